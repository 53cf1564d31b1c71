// The io_uring side of an IoOp, shared by run_batch (caller waits) and
// AsyncQueue (completion thread): how an op becomes an SQE and how a CQE's
// result becomes the op's status.
#pragma once

#include <liburing.h>

#include "io/batch.h"

namespace r5::io {

// The op's device has a file descriptor (fd() >= 0).
void prep_sqe(io_uring_sqe* sqe, const IoOp& op);
// Fills op.status from a CQE's result; a short transfer finishes synchronously
// (rare: the end of a file).
void finish_op(IoOp& op, int res);
// A ring call failed where the kernel may still write into request buffers:
// returning would let it scribble over memory the caller reuses.
[[noreturn]] void uring_fatal(const char* what, int rc);
// The op without io_uring.
Status run_sync(IoOp& op);

}  // namespace r5::io
