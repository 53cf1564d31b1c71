"""Writer and checker of the kill -9 loop (tests/e2e/kill_loop.sh).

`write` makes random O_DIRECT writes of whole 4 KiB blocks to the image and
an fdatasync every few writes, until the image stops answering (the daemon
was killed); then it records which writes it issued and which of them an
fdatasync covered before it failed. Every block it writes describes itself
(magic, block number, write number, a fill derived from both), so `check`
can tell which write a block holds, or that it holds none (garbage).

`check` reads every tracked block back (O_DIRECT) and applies the rules of
DESIGN §4: a block reads the last write that an fdatasync covered (or what it
held before, if none did), or one of the writes after that one, never
anything else. The blocks it read become the state for the next cycle.
"""
import argparse, json, mmap, os, random, struct, sys

BLOCK = 4096
MAGIC = b"R5KILL01"
HEADER = struct.Struct("<8sQQ")  # magic, block, write number


def content(block, seq):
    fill = random.Random(block * 1_000_003 + seq).randbytes(BLOCK - HEADER.size)
    return HEADER.pack(MAGIC, block, seq) + fill


def identify(buf, block):
    """The write number a block holds: 0 for all zeros, None for anything else."""
    magic, b, seq = HEADER.unpack_from(buf)
    if magic == MAGIC and b == block and buf == content(block, seq):
        return seq
    return 0 if buf.count(0) == BLOCK else None


def load_state(path, blocks):
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
        return state["next_seq"], [int(x) for x in state["holds"]]
    return 1, [0] * blocks


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cmd_write(a):
    next_seq, _ = load_state(a.state, a.blocks)
    rng = random.Random(a.seed)
    buf = mmap.mmap(-1, 16 * BLOCK)  # page aligned, as O_DIRECT needs
    issued, durable, seq = [], next_seq - 1, next_seq
    error = ""
    try:
        # The kill may come before the open: then nothing was written.
        fd = os.open(a.img, os.O_WRONLY | os.O_DIRECT)
        while True:
            for _ in range(rng.randint(1, 8)):
                n = rng.randint(1, 16)
                first = rng.randrange(0, a.blocks - n + 1)
                for i in range(n):
                    buf[i * BLOCK:(i + 1) * BLOCK] = content(first + i, seq)
                issued.append((seq, first, n))  # before the write: a write that fails may still land
                os.pwrite(fd, memoryview(buf)[: n * BLOCK], first * BLOCK)
                seq += 1
            os.fdatasync(fd)
            durable = seq - 1
    except OSError as e:
        error = str(e)
    save_json(a.log, {"issued": issued, "durable": durable, "next_seq": seq, "error": error})
    print(f"{len(issued)} writes issued, up to write {durable} covered by an fdatasync; stopped by: {error}")


def cmd_check(a):
    next_seq, holds = load_state(a.state, a.blocks)
    with open(a.log) as f:
        log = json.load(f)
    durable = log["durable"]
    # Per block: what it must hold at least (the last durable write, or what
    # it held before this cycle) and the later writes it may hold instead.
    floor = list(holds)
    later = [[] for _ in range(a.blocks)]
    for seq, first, n in log["issued"]:
        for b in range(first, first + n):
            if seq <= durable:
                floor[b] = seq
            else:
                later[b].append(seq)
    fd = os.open(a.img, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 256 * BLOCK)
    bad = []
    for start in range(0, a.blocks, 256):
        n = min(256, a.blocks - start)
        got = os.preadv(fd, [memoryview(buf)[: n * BLOCK]], start * BLOCK)
        if got != n * BLOCK:
            sys.exit(f"short read at block {start}")
        for i in range(n):
            b = start + i
            seq = identify(buf[i * BLOCK:(i + 1) * BLOCK], b)
            if seq is None:
                bad.append(f"block {b}: garbage (expected write {floor[b]} or one of {later[b][:5]})")
            elif seq != floor[b] and seq not in later[b]:
                kind = "a durable write lost" if seq < floor[b] else "a write nobody issued"
                bad.append(f"block {b}: holds write {seq}, expected {floor[b]} or one of {later[b][:5]} ({kind})")
            else:
                holds[b] = seq
    if bad:
        sys.exit(f"{len(bad)} blocks wrong after the kill:\n  " + "\n  ".join(bad[:20]))
    save_json(a.state, {"next_seq": log["next_seq"], "holds": holds})
    changed = sum(1 for b in range(a.blocks) if later[b] and holds[b] in later[b])
    print(f"{a.blocks} blocks ok; {changed} hold a write after the last fdatasync")


ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
sub = ap.add_subparsers(dest="cmd", required=True)
for name in ("write", "check"):
    p = sub.add_parser(name)
    p.add_argument("--img", required=True)
    p.add_argument("--blocks", type=int, required=True, help="tracked blocks from the start of the image")
    p.add_argument("--state", required=True, help="what each block held after the last check (JSON)")
    p.add_argument("--log", required=True, help="the writes of this cycle (JSON)")
    p.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
cmd_write(a) if a.cmd == "write" else cmd_check(a)
