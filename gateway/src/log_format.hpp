// Log lines as JSON (server.log_format = "json"): one object per event, for log pipelines that
// index fields rather than grep text. {"time":"2026-12-02T09:30:00.123Z","level":"info",
// "component":"journal","message":"…"}: the component is the message's leading word before
// ": " ("journal: recovered …" → "journal"), which every log line of the server starts with;
// "flashsale" when there is none. Secrets are never in messages (docs/operations.md), so none
// are in fields either.
#pragma once

#include <spdlog/formatter.h>

#include <memory>

namespace flashsale::gateway {

class JsonLines final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& out) override;
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLines>();
  }
};

}  // namespace flashsale::gateway
