#include "control/status.h"

namespace r5::control {

using nlohmann::json;

namespace {

std::string_view member_state(const array::MemberSet& members, uint32_t slot) {
  if (members.device(slot) != nullptr) return "active";
  if (members.rebuild_slot() == slot) return "rebuilding";
  return members.present(slot) ? "failed" : "missing";
}

json members_json(const array::MemberSet& members) {
  json list = json::array();
  for (uint32_t slot = 0; slot < members.count(); ++slot) {
    json m = {{"slot", slot}, {"path", members.path(slot)}, {"state", member_state(members, slot)}};
    if (members.rebuild_slot() == slot) {
      m["path"] = members.rebuild_path();
      m["replaces"] = members.path(slot);
      m["rebuild_percent"] = 100.0 * double(members.rebuild_row()) / double(members.geometry().rows);
    }
    list.push_back(m);
  }
  return list;
}

json journal_json(engine::Engine& engine) {
  const config::Config& cfg = engine.config();
  json j = {{"mode", config::mode_name(engine.mode())}, {"path", cfg.journal.path.native()}};
  engine::JournaledCache* cache = engine.journal_cache();
  if (cache == nullptr) return j;
  const engine::JournaledCache::Usage u = cache->usage();
  const engine::CacheCounters& c = cache->counters();
  const uint64_t used = u.journal_blocks - u.journal_free;
  j["sync"] = config::sync_name(cfg.journal.sync);
  j["blocks"] = u.journal_blocks;
  j["used_blocks"] = used;
  j["reserved_blocks"] = u.reserved;
  j["fill_percent"] = u.journal_blocks ? 100.0 * double(used) / double(u.journal_blocks) : 0.0;
  j["tail"] = {{"position", u.tail_position}, {"sequence", u.tail_sequence}};
  j["head"] = {{"position", u.head_position}, {"sequence", u.head_sequence}};
  j["records"] = c.journal_records.load();
  j["bytes"] = c.journal_bytes.load();
  j["syncs"] = c.journal_syncs.load();
  j["commits"] = c.write_batches.load();
  j["writes_committed"] = c.writes_batched.load();
  j["space_waits"] = c.space_waits.load();
  j["replay"] = {{"seconds", c.replay_seconds},
                 {"records", c.replay_records},
                 {"blocks_read", c.replay_blocks_read},
                 {"repaired_rows", c.replay_repaired_rows},
                 {"dirty_pages", c.replay_dirty_pages}};
  return j;
}

json cache_json(engine::Engine& engine) {
  engine::JournaledCache* cache = engine.journal_cache();
  if (cache == nullptr) return nullptr;
  const engine::JournaledCache::Usage u = cache->usage();
  const engine::CacheCounters& c = cache->counters();
  return {{"memory", engine.config().cache.memory},
          {"pages", u.pool_pages},
          {"pages_max", u.pool_capacity},
          {"dirty_stripes", u.stripes},
          {"full_stripes", u.full_stripes},
          {"unsynced_stripes", u.unsynced_stripes},
          {"read_bytes", c.pool_read_bytes.load()},
          {"memory_waits", c.memory_waits.load()},
          {"flushes", c.flush_batches.load()},
          {"stripes_flushed", c.stripes_flushed.load()},
          {"full_stripes_flushed", c.full_stripes_flushed.load()},
          {"checkpoints", c.checkpoints.load()}};
}

json requests_json(const engine::RequestCounters& r) {
  json reads = json::object(), writes = json::object();
  for (size_t i = 0; i < engine::RequestCounters::kClasses; ++i) {
    reads[r.kClassName[i]] = r.reads[i].load();
    writes[r.kClassName[i]] = r.writes[i].load();
  }
  return {{"reads", reads},
          {"writes", writes},
          {"fsyncs", r.fsyncs.load()},
          {"read_errors", r.read_errors.load()},
          {"write_errors", r.write_errors.load()}};
}

json array_counters_json(const array::ArrayCounters& c) {
  return {{"full_stripe_writes", c.full_stripe_writes.load()},
          {"reconstruct_writes", c.reconstruct_writes.load()},
          {"read_modify_writes", c.read_modify_writes.load()},
          {"degraded_writes", c.degraded_writes.load()},
          {"degraded_reads", c.degraded_reads.load()},
          {"member_bytes_read", c.member_bytes_read.load()},
          {"member_bytes_written", c.member_bytes_written.load()},
          {"member_syncs", c.syncs.load()}};
}

// The fields every background job reports (tools/progress.h reads them).
template <typename Progress>
json job_json(const Progress& p) {
  return {{"state", engine::job_state_name(p.state)},
          {"start_row", p.start_row},
          {"next_row", p.next_row},
          {"rows", p.rows},
          {"percent", p.rows ? 100.0 * double(p.next_row) / double(p.rows) : 0.0},
          {"bytes", p.bytes},
          {"seconds", p.seconds},
          {"bytes_per_second", p.seconds > 0 ? double(p.bytes) / p.seconds : 0.0},
          {"error", p.error.empty() ? json(nullptr) : json(p.error)}};
}

}  // namespace

json check_json(const engine::Scrubber::Progress& p) {
  json j = job_json(p);
  j["repair"] = p.repair;
  j["rows_checked"] = p.rows_checked;
  j["mismatches"] = p.mismatches;
  j["repaired"] = p.repaired;
  j["mismatch_rows"] = p.mismatch_rows;
  return j;
}

json rebuild_json(const engine::Rebuilder::Progress& p) {
  json j = job_json(p);
  j["slot"] = p.slot;
  j["path"] = p.path;
  return j;
}

json status_json(engine::Engine& engine) {
  auto mode_lock = engine.hold_mode();
  const config::Config& cfg = engine.config();
  array::RaidArray& raid = engine.array();
  const array::MemberSet& members = raid.members();
  const format::MemberSuperblock sb = members.superblock();
  std::optional<Error> failure;
  if (engine.journal_cache() != nullptr) failure = engine.journal_cache()->failure();
  if (!failure && !members.usable())
    failure = io_error(EIO, fmt::format("{} of {} members have failed", members.failed_count(), members.count()));
  const uint32_t failed = members.failed_count();
  const auto& rc = raid.counters();
  return {
      {"version", kStatusVersion},
      {"array",
       {{"name", sb.name},
        {"uuid", format::uuid_to_string(sb.array_uuid)},
        {"level", sb.level},
        {"layout", geometry::layout_name(sb.layout)},
        {"chunk_size", sb.chunk_size},
        {"capacity", raid.capacity()},
        {"events", sb.events},
        {"state", !members.usable() ? "failed" : failed ? "degraded" : "active"},
        {"degraded", failed > 0},
        {"read_only", members.read_only() || failure.has_value()},
        {"config", cfg.file.native()}}},
      {"members", members_json(members)},
      {"journal", journal_json(engine)},
      {"cache", cache_json(engine)},
      {"requests", requests_json(engine.request_counters())},
      {"array_io", array_counters_json(rc)},
      {"resync",
       {{"pending", engine.resync_pending()},
        {"rows_checked", rc.resync_rows_checked.load()},
        {"rows_repaired", rc.resync_rows_repaired.load()}}},
      {"check", check_json(engine.check_progress())},
      {"rebuild", rebuild_json(engine.rebuild_progress())},
      {"error", failure ? json(failure->message) : json(nullptr)},
  };
}

}  // namespace r5::control
