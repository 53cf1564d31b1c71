#include "engine/engine.h"

#include "array/aligned_buffer.h"
#include "array/assembly.h"
#include "base/log.h"

namespace r5::engine {

Engine::Engine(config::Config cfg, std::unique_ptr<array::RaidArray> array, bool resync_needed)
    : cfg_(std::move(cfg)), array_(std::move(array)), resync_needed_(resync_needed) {}

Engine::~Engine() {
  if (Status st = close(); !st.ok()) log::error("closing the array: {}", st.error().message);
}

Result<std::unique_ptr<Engine>> Engine::open(const config::Config& cfg, bool read_only) {
  if (cfg.journal.mode != config::JournalMode::kNone)
    return invalid(fmt::format("{}: journal.mode: found \"{}\", but this version of r5cfs implements only \"none\" "
                               "(plain RAID5/6); set journal.mode = \"none\"",
                               cfg.file.string(), config::mode_name(cfg.journal.mode)));
  R5_ASSIGN_OR_RETURN(array::Assembled assembled, array::assemble(cfg, array::examine(cfg, read_only)));
  for (const std::string& notice : assembled.notices) log::warn("{}", notice);
  const bool unclean = assembled.sb.state == format::ArrayState::kDirty && !read_only;
  if (unclean && assembled.degraded())
    log::warn("array '{}' was not shut down cleanly and is degraded: stripes being written at the time may have "
              "stale parity, which corrupts the missing member's blocks there (the write hole of journal mode none)",
              assembled.sb.name);
  else if (unclean)
    log::warn("array '{}' was not shut down cleanly: parity will be resynchronised in the background", assembled.sb.name);
  auto members = std::make_unique<array::MemberSet>(assembled.sb, std::move(assembled.slots), read_only);
  // Marking the array dirty also records members found missing as failed, so
  // they cannot rejoin later with stale data.
  R5_TRY(members->write_superblocks(format::ArrayState::kDirty));
  auto raid = std::make_unique<array::RaidArray>(std::move(members));
  log::info("array '{}' assembled: RAID{} {} members, chunk {} KiB, capacity {} bytes{}", cfg.array.name,
            cfg.array.level, cfg.array.members.size(), cfg.array.chunk_size / 1024, raid->capacity(),
            raid->members().failed_count() ? fmt::format(", DEGRADED ({} failed)", raid->members().failed_count()) : "");
  const bool resync = unclean && !assembled.degraded();
  return std::unique_ptr<Engine>(new Engine(cfg, std::move(raid), resync));
}

Status Engine::read(uint64_t offset, std::span<std::byte> out) { return array_->read(offset, out); }

Status Engine::write(uint64_t offset, std::span<const std::byte> in) { return array_->write(offset, in); }

Status Engine::fsync() { return array_->sync(); }

Status Engine::write_zeros(uint64_t offset, uint64_t len) {
  constexpr size_t kStep = 1 << 20;
  static const AlignedBuffer zeros(kStep);
  for (uint64_t done = 0; done < len;) {
    size_t n = size_t(std::min<uint64_t>(kStep, len - done));
    R5_TRY(array_->write(offset + done, {zeros.data(), n}));
    done += n;
  }
  return {};
}

void Engine::start_background() {
  if (resync_needed_ && !resync_thread_.joinable()) resync_thread_ = std::thread([this] { resync(); });
}

void Engine::resync() {
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

Status Engine::close() {
  if (closed_) return {};
  closed_ = true;
  stopping_ = true;
  if (resync_thread_.joinable()) resync_thread_.join();
  R5_TRY(array_->sync());
  return array_->members().write_superblocks(resync_pending() ? format::ArrayState::kDirty : format::ArrayState::kClean);
}

}  // namespace r5::engine
