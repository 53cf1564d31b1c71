#include "engine/engine.h"

#include "array/aligned_buffer.h"
#include "array/assembly.h"
#include "base/log.h"
#include "engine/creator.h"
#include "journal/reader.h"

namespace r5::engine {

Engine::Engine(config::Config cfg, std::unique_ptr<array::RaidArray> array, bool resync_needed)
    : cfg_(std::move(cfg)),
      array_(std::move(array)),
      mode_(cfg_.journal.mode),
      scrubber_(std::make_unique<Scrubber>(*array_, cfg_.array.sync_speed_max, cfg_.array.name)),
      rebuilder_(std::make_unique<Rebuilder>(*array_, cfg_.array.sync_speed_max, cfg_.array.name)),
      resync_needed_(resync_needed) {}

Engine::~Engine() {
  if (Status st = close(); !st.ok()) log::error("closing the array: {}", st.error().message);
}

Result<std::unique_ptr<JournaledCache>> Engine::open_journal(const config::Config& cfg, array::RaidArray& array,
                                                            const OpenOptions& options, bool& was_in_use) {
  io::OpenOptions open_options;
  open_options.read_only = options.read_only;
  open_options.cached_writes = true;
  R5_ASSIGN_OR_RETURN(std::unique_ptr<io::Device> dev, io::open_file(cfg.journal.path, open_options));
  R5_ASSIGN_OR_RETURN(format::JournalSuperblock sb, journal::read_superblock(*dev));
  was_in_use = (sb.flags & format::kJournalClean) == 0;
  if (options.read_only) {
    if (was_in_use)
      return invalid(fmt::format("{}: the journal holds writes not yet on the members; mount read-write once to "
                                 "replay it",
                                 dev->name()));
    return std::unique_ptr<JournaledCache>();
  }
  JournaledCache::Options o;
  o.mode = cfg.journal.mode;
  o.sync_always = cfg.journal.sync == config::JournalSync::kAlways;
  o.memory = cfg.cache.memory;
  o.max_age = cfg.cache.max_age;
  o.force = options.force;
  R5_ASSIGN_OR_RETURN(std::unique_ptr<JournaledCache> cache, JournaledCache::open(array, std::move(dev), o));
  if (cfg.journal.mode == config::JournalMode::kNone) {
    // Leaving the journal modes: write everything out and leave the log empty.
    R5_TRY(cache->close(true));
    return std::unique_ptr<JournaledCache>();
  }
  return cache;
}

Result<std::unique_ptr<Engine>> Engine::open(const config::Config& cfg, const OpenOptions& options) {
  const bool read_only = options.read_only;
  R5_ASSIGN_OR_RETURN(array::Assembled assembled, array::assemble(cfg, array::examine(cfg, read_only)));
  for (const std::string& notice : assembled.notices) log::warn("{}", notice);
  bool unclean = assembled.sb.state == format::ArrayState::kDirty && !read_only;
  auto members = std::make_unique<array::MemberSet>(assembled.sb, std::move(assembled.slots), read_only,
                                                    std::move(assembled.rebuilding));
  auto raid = std::make_unique<array::RaidArray>(std::move(members));
  // Members found missing are recorded as failed, so that they cannot rejoin
  // later with stale data, before the journal: its replay writes the other
  // members, and a crash after that must find the missing ones recorded (or
  // they would rejoin behind the repaired rows). The state stays as it was:
  // a journal that is then refused leaves no needless resync behind.
  if (assembled.degraded()) R5_TRY(raid->members().write_superblocks(assembled.sb.state));
  std::unique_ptr<JournaledCache> cache;
  if (!cfg.journal.path.empty()) {
    bool journal_in_use = false;
    R5_ASSIGN_OR_RETURN(cache, open_journal(cfg, *raid, options, journal_in_use));
    // The journal covered the last session's writes: its replay repaired
    // every stripe that was being written, so no parity resync is needed.
    if (journal_in_use) unclean = false;
  }
  if (unclean && assembled.degraded())
    log::warn("array '{}' was not shut down cleanly and is degraded: stripes being written at the time may have "
              "stale parity, which corrupts the missing member's blocks there (the write hole of journal mode none)",
              assembled.sb.name);
  else if (unclean)
    log::warn("array '{}' was not shut down cleanly: parity will be resynchronised in the background", assembled.sb.name);
  R5_TRY(raid->members().write_superblocks(format::ArrayState::kDirty));
  log::info("array '{}' assembled: RAID{} {} members, chunk {} KiB, capacity {} bytes, journal mode {}{}", cfg.array.name,
            cfg.array.level, cfg.array.members.size(), cfg.array.chunk_size / 1024, raid->capacity(),
            config::mode_name(cfg.journal.mode),
            raid->members().failed_count() ? fmt::format(", DEGRADED ({} failed)", raid->members().failed_count()) : "");
  const bool resync = unclean && !assembled.degraded();
  std::unique_ptr<Engine> engine(new Engine(cfg, std::move(raid), resync));
  engine->cache_ = std::move(cache);
  return engine;
}

Status Engine::read(uint64_t offset, std::span<std::byte> out) {
  requests_.reads[RequestCounters::class_of(out.size())].fetch_add(1, std::memory_order_relaxed);
  std::shared_lock mode_lock(mode_mu_);
  Status st = cache_ ? cache_->read(offset, out) : array_->read(offset, out);
  if (!st.ok()) requests_.read_errors.fetch_add(1, std::memory_order_relaxed);
  return st;
}

void Engine::read_async(uint64_t offset, std::span<std::byte> out, std::function<void(Status)> done) {
  requests_.reads[RequestCounters::class_of(out.size())].fetch_add(1, std::memory_order_relaxed);
  auto finish = [this, done = std::move(done)](Status st) {
    if (!st.ok()) requests_.read_errors.fetch_add(1, std::memory_order_relaxed);
    done(std::move(st));
  };
  JournaledCache::Ranges gaps{{offset, offset + out.size()}};
  std::vector<io::IoOp> ops;
  bool direct = reads_ != nullptr;
  {
    std::shared_lock mode_lock(mode_mu_);
    if (cache_) {
      Result<JournaledCache::Ranges> r = cache_->read_from_pool(offset, out);
      if (!r.ok()) return finish(r.error());
      gaps = std::move(*r);
    }
    for (auto [a, b] : gaps)
      direct = direct && array_->plan_direct_read(a, out.subspan(a - offset, b - a), ops);
  }
  // The members' part again, with locks, degraded if it must be.
  auto read_gaps = [this, offset, out, gaps]() -> Status {
    for (auto [a, b] : gaps) R5_TRY(array_->read(a, out.subspan(a - offset, b - a)));
    return {};
  };
  if (!direct) return finish(read_gaps());
  if (ops.empty()) return finish({});
  uint64_t bytes = 0;
  for (auto [a, b] : gaps) bytes += b - a;
  reads_->submit(std::move(ops), [this, bytes, read_gaps = std::move(read_gaps), finish = std::move(finish)](std::span<io::IoOp> ops) {
    Status st = array_->finish_direct_read(ops, bytes);
    if (!st.ok()) {
      log::warn("{}; reading again through the array", st.error().message);
      st = read_gaps();
    }
    finish(std::move(st));
  });
}

void Engine::wait_async_reads() {
  if (reads_) reads_->wait_idle();
}

Status Engine::write(uint64_t offset, std::span<const std::byte> in) {
  requests_.writes[RequestCounters::class_of(in.size())].fetch_add(1, std::memory_order_relaxed);
  std::shared_lock mode_lock(mode_mu_);
  Status st = cache_ ? cache_->write(offset, in) : array_->write(offset, in);
  if (!st.ok()) requests_.write_errors.fetch_add(1, std::memory_order_relaxed);
  return st;
}

Status Engine::fsync() {
  requests_.fsyncs.fetch_add(1, std::memory_order_relaxed);
  std::shared_lock mode_lock(mode_mu_);
  return cache_ ? cache_->fsync() : array_->sync();
}

Status Engine::fail_member(uint32_t slot) {
  std::lock_guard lock(admin_mu_);
  return fail_member_locked(slot, "failed by the administrator (r5cfs fail)");
}

Status Engine::fail_member_locked(uint32_t slot, std::string_view reason) {
  array::MemberSet& members = array_->members();
  if (slot >= members.count()) return invalid(fmt::format("no member in slot {} (the array has {})", slot, members.count()));
  if (members.read_only()) return invalid("the array is mounted read-only");
  if (members.device(slot) == nullptr) return invalid(fmt::format("member {} (slot {}) has already failed", members.path(slot), slot));
  if (members.failed_count() + 1 > members.geometry().parity_count())
    return invalid(fmt::format("failing {} would fail the array: {} of {} members have failed already and RAID{} "
                               "survives {}",
                               members.path(slot), members.failed_count(), members.count(), cfg_.array.level,
                               members.geometry().parity_count()));
  return members.mark_failed(slot, reason);
}

Status Engine::start_replace(uint32_t slot, const std::filesystem::path& path, bool force) {
  std::lock_guard lock(admin_mu_);
  array::MemberSet& members = array_->members();
  if (slot >= members.count()) return invalid(fmt::format("no member in slot {} (the array has {})", slot, members.count()));
  if (members.read_only()) return invalid("the array is mounted read-only");
  std::error_code ec;
  const std::filesystem::path wanted = std::filesystem::weakly_canonical(path, ec);
  auto same = [&](const std::filesystem::path& p) {
    std::error_code e;
    return !p.empty() && std::filesystem::weakly_canonical(p, e) == wanted && !e;
  };
  if (members.rebuild_slot() != array::MemberSet::kNoRebuild) {
    if (members.rebuild_slot() != slot || !same(members.rebuild_path()))
      return Error{ErrorKind::kBusy, EBUSY,
                   fmt::format("slot {} is being rebuilt onto {}", members.rebuild_slot(), members.rebuild_path())};
    // The same replacement again: resume it if it is not running.
    Status st = rebuilder_->start();
    return st.ok() || st.error().kind == ErrorKind::kBusy ? Status{} : st;
  }
  // Never one of the array's own devices under another name.
  for (uint32_t i = 0; i < members.count(); ++i)
    if (same(members.path(i)) || same(cfg_.array.members[i]))
      return invalid(fmt::format("{} is a member of the array already (slot {})", path.native(), i));
  if (same(cfg_.journal.path)) return invalid(fmt::format("{} is the array's journal", path.native()));

  const uint64_t needed = members.data_offset() + members.superblock().data_size;
  io::OpenOptions open_options;
  open_options.create = true;
  open_options.create_size = needed + format::kTailReserve;  // as r5cfs create sizes members
  const bool existed = std::filesystem::exists(path, ec);
  R5_ASSIGN_OR_RETURN(std::unique_ptr<io::Device> dev, io::open_file(path, open_options));
  if (dev->size() < needed)
    return invalid(fmt::format("{} has {} bytes, the array needs {} on each member", path.native(), dev->size(), needed));
  if (existed) R5_TRY(check_unused(path, *dev, force));
  if (members.device(slot) != nullptr)
    R5_TRY(fail_member_locked(slot, fmt::format("replaced by {} (r5cfs replace)", path.native())));
  R5_TRY(members.begin_rebuild(slot, std::move(dev), path.native()));
  return rebuilder_->start();
}

Status Engine::drain() {
  std::shared_lock mode_lock(mode_mu_);
  return cache_ ? cache_->drain() : array_->sync();
}

Status Engine::set_mode(config::JournalMode mode) {
  std::lock_guard lock(admin_mu_);
  using config::JournalMode;
  const JournalMode current = mode_;
  if (mode == current) return {};
  if (array_->members().read_only()) return invalid("the array is mounted read-only");
  if (std::shared_lock mode_lock(mode_mu_); cache_ && cache_->failure())
    return invalid(fmt::format("the journal has failed ({}): take it out with r5cfs journal remove --force",
                               cache_->failure()->message));
  if (mode != JournalMode::kNone && current != JournalMode::kNone) {
    std::shared_lock mode_lock(mode_mu_);
    cache_->set_write_through(mode == JournalMode::kWriteThrough);
  } else if (mode == JournalMode::kNone) {
    // Most of the drain while I/O goes on; the rest with I/O held off.
    R5_TRY(drain());
    std::unique_lock mode_lock(mode_mu_);
    R5_TRY(cache_->close(/*drain=*/true));
    cache_.reset();
  } else {
    if (cfg_.journal.path.empty()) return invalid("the array has no journal: add one with r5cfs journal add");
    config::Config cfg = cfg_;
    cfg.journal.mode = mode;
    bool in_use = false;
    std::unique_lock mode_lock(mode_mu_);
    R5_ASSIGN_OR_RETURN(cache_, open_journal(cfg, *array_, OpenOptions{}, in_use));
    cache_->start();
  }
  mode_ = mode;
  log::warn("array '{}': journal mode {} (was {})", cfg_.array.name, config::mode_name(mode), config::mode_name(current));
  return {};
}

Status Engine::remove_journal(bool force) {
  if (!force) {
    R5_TRY(set_mode(config::JournalMode::kNone));
    std::lock_guard lock(admin_mu_);
    std::unique_lock mode_lock(mode_mu_);
    cfg_.journal.path.clear();
    return {};
  }
  std::lock_guard lock(admin_mu_);
  std::unique_lock mode_lock(mode_mu_);
  if (!cache_) {
    cfg_.journal.path.clear();
    return {};
  }
  std::optional<Error> failure = cache_->failure();
  if (!failure) return invalid("the journal works: remove it without --force (its data is drained to the members first)");
  log::error("array '{}': taking out the failed journal ({}); its dirty data goes to the members without it",
             cfg_.array.name, failure->message);
  R5_ASSIGN_OR_RETURN(size_t rows, cache_->salvage(*array_));
  if (Status st = cache_->retire(); !st.ok())
    log::error("array '{}': {}: could not mark the journal empty ({}): never mount the array with it again; "
               "r5cfs journal add formats a new one",
               cfg_.array.name, cfg_.journal.path.native(), st.error().message);
  (void)cache_->close(false);  // the journal cannot record anything more
  cache_.reset();
  cfg_.journal.path.clear();
  mode_ = config::JournalMode::kNone;
  log::warn("array '{}': {} dirty stripes written to the members; journal mode none; resynchronising parity",
            cfg_.array.name, rows);
  start_resync_locked();
  return {};
}

Status Engine::add_journal(const std::filesystem::path& path, uint64_t size, config::JournalMode mode, bool force) {
  {
    std::lock_guard lock(admin_mu_);
    if (mode_ != config::JournalMode::kNone || !cfg_.journal.path.empty())
      return invalid(fmt::format("the array has a journal already ({}): remove it first with r5cfs journal remove",
                                 cfg_.journal.path.native()));
    config::Config cfg = cfg_;
    cfg.journal.path = path;
    cfg.journal.size = size;
    cfg.journal.mode = mode;
    std::vector<std::string> notices;
    R5_TRY(engine::add_journal(cfg, array_->members().superblock(), force, notices));
    for (const std::string& n : notices) log::info("{}", n);
    std::unique_lock mode_lock(mode_mu_);
    cfg_.journal.path = path;
    cfg_.journal.size = size;
  }
  return set_mode(mode);
}

void Engine::start_resync_locked() {
  if (resync_thread_.joinable() || array_->members().failed_count() > 0) return;
  resync_needed_ = true;
  resync_done_ = false;
  resync_running_ = true;
  resync_thread_ = std::thread([this] { resync(); });
}

Status Engine::write_zeros(uint64_t offset, uint64_t len) {
  constexpr size_t kStep = 1 << 20;
  static const AlignedBuffer zeros(kStep);
  for (uint64_t done = 0; done < len;) {
    size_t n = size_t(std::min<uint64_t>(kStep, len - done));
    R5_TRY(write(offset + done, {zeros.data(), n}));
    done += n;
  }
  return {};
}

void Engine::start_background() {
  if (!reads_) reads_ = std::make_unique<io::AsyncQueue>();
  if (cache_) cache_->start();
  if (resync_needed_ && !resync_thread_.joinable()) {
    resync_running_ = true;
    resync_thread_ = std::thread([this] { resync(); });
  }
  if (array_->members().rebuild_slot() != array::MemberSet::kNoRebuild) (void)rebuilder_->start();
  const std::optional<format::CheckPosition> check = array_->members().superblock().check;
  if (check && !array_->members().read_only() && check_progress().state == Scrubber::State::kIdle) {
    log::info("array '{}': resuming the interrupted check at row {}", cfg_.array.name, check->next_row);
    (void)scrubber_->start(check->repair, check->next_row);
  }
}

Status Engine::start_check(bool repair, bool restart) {
  if (repair && array_->members().read_only()) return invalid("the array is mounted read-only: a check cannot repair");
  // Starting over stops a check that runs: a mount resumes an interrupted
  // check in the background, and --restart right after it means this one.
  if (restart && check_progress().state == Scrubber::State::kRunning) scrubber_->stop();
  const std::optional<format::CheckPosition> check = array_->members().superblock().check;
  const bool resume = !restart && check && check->repair == repair;
  return scrubber_->start(repair, resume ? check->next_row : 0);
}

void Engine::resync() {
  struct Ended {
    std::atomic<bool>& running;
    ~Ended() { running = false; }
  } ended{resync_running_};
  array::RaidArray::RepairPass pass(*array_);
  const uint64_t rows = array_->members().geometry().rows;
  const auto& c = array_->counters();
  log::info("resync of '{}' started: {} rows", cfg_.array.name, rows);
  uint64_t decile = 1;  // progress is logged every 10%
  for (uint64_t row = 0; row < rows; ++row) {
    if (stopping_) {
      log::info("resync of '{}' interrupted at row {} of {}; it restarts at the next mount", cfg_.array.name, row, rows);
      return;
    }
    if (Status st = array_->resync_row(row); !st.ok()) {
      log::error("resync of '{}' stopped at row {}: {}", cfg_.array.name, row, st.error().message);
      return;
    }
    if (decile < 10 && (row + 1) * 10 >= rows * decile) {
      log::info("resync of '{}': {}% ({} rows repaired)", cfg_.array.name, decile * 10, c.resync_rows_repaired.load());
      ++decile;
    }
  }
  resync_done_ = true;
  log::info("resync of '{}' complete: {} rows checked, {} repaired", cfg_.array.name, c.resync_rows_checked.load(),
            c.resync_rows_repaired.load());
}

Status Engine::close(bool drain) {
  if (closed_) return {};
  closed_ = true;
  stopping_ = true;
  reads_.reset();  // waits for the reads in flight
  scrubber_->stop();  // their positions stay in the superblocks
  rebuilder_->stop();
  if (resync_thread_.joinable()) resync_thread_.join();
  // The members are synced even when the journal failed: stripes already
  // written to them are then durable there, journal or not.
  const Status cache_closed = cache_ ? cache_->close(drain || cfg_.journal.drain_on_unmount) : Status{};
  R5_TRY(array_->sync());
  R5_TRY(cache_closed);
  return array_->members().write_superblocks(resync_pending() ? format::ArrayState::kDirty : format::ArrayState::kClean);
}

}  // namespace r5::engine
