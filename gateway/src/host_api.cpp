// See host_api.hpp. Status codes: 400 bad input, 401 no or wrong host key, 404 unknown drop or
// route, 405 wrong method, 409 exists / wrong state / drop limit, 503 the journal cannot take
// writes or the engine is busy.
#include "host_api.hpp"

#include <fmt/format.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <boost/json.hpp>

#include "cluster_gateway.hpp"
#include "flashsale/gateway/protocol.hpp"
#include "flashsale/gateway/tokens.hpp"

namespace flashsale::gateway {

namespace http = boost::beast::http;
namespace json = boost::json;
using engine::CommandStatus;

HostReply http_error(unsigned status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":";
  protocol::append_string(body, code);
  body += ",\"message\":";
  protocol::append_string(body, message);
  body += "}}";
  return {status, std::move(body)};
}

namespace {

std::string drop_json(const engine::DropInfo& info) {
  std::string out = "{\"id\":";
  protocol::append_string(out, info.spec.id);
  out += ",\"title\":";
  protocol::append_string(out, info.spec.title);
  fmt::format_to(std::back_inserter(out),
                 ",\"price_cents\":{},\"stock_total\":{},\"stock_left\":{},\"per_user_limit\":{},"
                 "\"hold_seconds\":{},\"waitlist_limit\":{},\"state\":\"{}\",\"opens_at_ms\":{},"
                 "\"held\":{},\"sold\":{},\"waitlist\":{},\"orders\":{},\"decisions\":{},"
                 "\"admission_window_ms\":{},\"pending\":{},\"pledge_bps\":{},"
                 "\"raised_cents\":{},\"supporters\":{},\"orders_confirmed\":{},",

                 info.spec.price_cents, info.stock_total, info.stock_left, info.spec.per_user_limit,
                 info.spec.hold_ms / 1000, info.spec.waitlist_limit, engine::to_string(info.state),
                 info.opens_at_ms ? std::to_string(*info.opens_at_ms) : "null", info.held,
                 info.sold, info.waitlist_orders, info.orders, info.decisions,
                 info.spec.admission_window_ms, info.pending_orders, info.spec.pledge_bps,
                 info.raised_cents, info.supporters, info.orders_confirmed);
  out += "\"beneficiary\":";
  protocol::append_string(out, info.spec.beneficiary);
  out += ",\"beneficiary_note\":";
  protocol::append_string(out, info.spec.beneficiary_note);
  out += '}';
  return out;
}

HostReply from_status(const engine::CommandResult& result, engine::Engine& engine,
                      unsigned ok_status) {
  switch (result.status) {
    case CommandStatus::ok:
      return {ok_status, drop_json(engine.drop_info(result.drop))};
    case CommandStatus::invalid_argument:
      return http_error(400, "invalid_argument", result.reason);
    case CommandStatus::unknown_drop:
      return http_error(404, "unknown_drop", "no such drop");
    case CommandStatus::already_exists:
      return http_error(409, "already_exists", result.reason);
    case CommandStatus::wrong_state:
      return http_error(409, "wrong_state", result.reason);
    case CommandStatus::limit_reached:
      return http_error(409, "limit_reached", result.reason);
    default:
      return http_error(500, "internal", "unexpected engine status");
  }
}

// Reads an integer field in [min, max]; nullopt (with `problem` set) when absent or wrong.
std::optional<std::int64_t> integer(const json::object& body, std::string_view field,
                                    std::int64_t min, std::int64_t max, std::string& problem) {
  const json::value* value = body.if_contains(field);
  if (value == nullptr || !value->is_int64() || value->get_int64() < min ||
      value->get_int64() > max) {
    problem = fmt::format("\"{}\" must be a whole number from {} to {}", field, min, max);
    return std::nullopt;
  }
  return value->get_int64();
}

std::optional<std::string> text(const json::object& body, std::string_view field, std::size_t max,
                                std::string& problem) {
  const json::value* value = body.if_contains(field);
  if (value == nullptr || !value->is_string() || value->get_string().size() > max) {
    problem = fmt::format("\"{}\" must be a string of at most {} bytes", field, max);
    return std::nullopt;
  }
  return std::string(value->get_string());
}

// Splits "/api/drops/{id}/{action}" into its parts after "/api/".
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

std::optional<std::string> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto equals = pair.find('=');
    if (equals != std::string_view::npos && pair.substr(0, equals) == key)
      return std::string(pair.substr(equals + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

using EngineCall = std::function<HostReply(HostContext&)>;

std::optional<HostReply> on_engine(ServerContext& context, EngineCall call, bool changes,
                                   std::function<void(HostReply)> done) {
  HostRequest request;
  request.run = [call = std::move(call), changes](HostContext& host) {
    if (changes && !host.accepting)
      return http_error(503, "unavailable", "the journal cannot take writes");
    return call(host);
  };
  request.done = std::move(done);
  if (!context.sequencer.submit(std::move(request)))
    return http_error(503, "busy", "the engine is busy; retry");
  return std::nullopt;
}

std::optional<HostReply> create_drop(const json::object& body, ServerContext& context,
                                     std::function<void(HostReply)> done) {
  std::string problem;
  const auto id = text(body, "id", engine::drop_id_length_max, problem);
  const auto title = text(body, "title", engine::title_length_max, problem);
  const auto price = integer(body, "price_cents", 0, 1'000'000'000'000, problem);
  const auto stock = integer(body, "stock", 0, 1'000'000'000, problem);
  const auto limit = integer(body, "per_user_limit", 1, 1'000'000, problem);
  const auto hold = integer(body, "hold_seconds", 1, 86'400, problem);
  const auto waitlist =
      body.contains("waitlist_limit")
          ? integer(body, "waitlist_limit", 0, context.config.limits.waitlist_limit_max, problem)
          : std::optional<std::int64_t>(0);
  const auto window = body.contains("admission_window_ms")
                          ? integer(body, "admission_window_ms", 0, 60'000, problem)
                          : std::optional<std::int64_t>(0);
  const auto pledge = body.contains("pledge_bps")
                          ? integer(body, "pledge_bps", 0, engine::pledge_bps_max, problem)
                          : std::optional<std::int64_t>(0);
  const auto beneficiary = body.contains("beneficiary")
                               ? text(body, "beneficiary", engine::beneficiary_length_max, problem)
                               : std::optional<std::string>("");
  const auto note =
      body.contains("beneficiary_note")
          ? text(body, "beneficiary_note", engine::beneficiary_note_length_max, problem)
          : std::optional<std::string>("");
  if (!id || !title || !price || !stock || !limit || !hold || !waitlist || !window || !pledge ||
      !beneficiary || !note)
    return http_error(400, "invalid_argument", problem);
  return on_engine(
      context,
      [id = *id, title = *title, price = *price, stock = *stock, limit = *limit, hold = *hold,
       waitlist = *waitlist, window = *window, pledge = *pledge, beneficiary = *beneficiary,
       note = *note](HostContext& host) {
        const engine::DropSpec spec{id,
                                    title,
                                    price,
                                    static_cast<std::uint32_t>(stock),
                                    static_cast<std::uint32_t>(limit),
                                    hold * 1000,
                                    static_cast<std::uint32_t>(waitlist),
                                    window,
                                    beneficiary,
                                    note,
                                    static_cast<std::uint32_t>(pledge)};
        return from_status(host.engine.create_drop(spec, host.now_ms, host.events), host.engine,
                           201);
      },
      true, std::move(done));
}

std::optional<HostReply> drop_action(std::string_view drop, std::string_view action,
                                     const json::object& body, ServerContext& context,
                                     std::function<void(HostReply)> done) {
  std::string problem;
  std::string id(drop);
  if (action == "countdown") {
    const auto seconds = integer(body, "seconds", 0, 7 * 86'400, problem);
    if (!seconds) return http_error(400, "invalid_argument", problem);
    return on_engine(
        context,
        [id, seconds = *seconds](HostContext& host) {
          // The admission window's draw must be unpredictable to buyers: a fresh CSPRNG seed,
          // journaled with the countdown and never shown.
          std::uint64_t seed = 0;
          if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1)
            return http_error(503, "unavailable", "no random seed for the admission draw");
          return from_status(
              host.engine.start_countdown(id, seconds * 1000, host.now_ms, host.events, seed),
              host.engine, 200);
        },
        true, std::move(done));
  }
  if (action == "restock") {
    const auto add = integer(body, "add", 1, 1'000'000'000, problem);
    if (!add) return http_error(400, "invalid_argument", problem);
    return on_engine(
        context,
        [id, add = *add](HostContext& host) {
          return from_status(
              host.engine.restock(id, static_cast<std::uint32_t>(add), host.now_ms, host.events),
              host.engine, 200);
        },
        true, std::move(done));
  }
  if (action == "close") {
    return on_engine(
        context,
        [id](HostContext& host) {
          return from_status(host.engine.close(id, host.now_ms, host.events), host.engine, 200);
        },
        true, std::move(done));
  }
  return http_error(404, "not_found", "no such route");
}

std::optional<HostReply> read_drops(std::string_view drop, ServerContext& context,
                                    std::function<void(HostReply)> done) {
  return on_engine(
      context,
      [id = std::string(drop)](HostContext& host) {
        if (id.empty()) {
          std::string out = "{\"drops\":[";
          for (engine::DropIndex index = 0; index < host.engine.drop_count(); ++index) {
            if (index > 0) out += ',';
            out += drop_json(host.engine.drop_info(index));
          }
          out += "]}";
          return HostReply{200, std::move(out)};
        }
        const auto index = host.engine.find_drop(id);
        if (!index) return http_error(404, "unknown_drop", "no such drop");
        return HostReply{200, drop_json(host.engine.drop_info(*index))};
      },
      false, std::move(done));
}

// What a drop's sale commits to, with the journal's chain head at that state (docs/audit.md).
std::optional<HostReply> read_audit(std::string_view drop, ServerContext& context,
                                    std::function<void(HostReply)> done) {
  HostRequest request;
  request.run = [id = std::string(drop)](HostContext& host) {
    const auto index = host.engine.find_drop(id);
    if (!index) return http_error(404, "unknown_drop", "no such drop");
    const engine::DropInfo info = host.engine.drop_info(*index);
    std::string out = "{\"drop\":";
    protocol::append_string(out, info.spec.id);
    out += ",\"beneficiary\":";
    protocol::append_string(out, info.spec.beneficiary);
    fmt::format_to(std::back_inserter(out),
                   ",\"pledge_bps\":{},\"units_sold\":{},\"orders_confirmed\":{},"
                   "\"supporters\":{},\"raised_cents\":{}}}",
                   info.spec.pledge_bps, info.sold, info.orders_confirmed, info.supporters,
                   info.raised_cents);
    return HostReply{200, std::move(out)};
  };
  request.done = std::move(done);
  request.with_chain_head = true;
  if (!context.sequencer.submit(std::move(request)))
    return http_error(503, "busy", "the engine is busy; retry");
  return std::nullopt;
}

std::optional<HostReply> read_orders(std::string_view drop, std::string user,
                                     ServerContext& context, std::function<void(HostReply)> done) {
  return on_engine(
      context,
      [id = std::string(drop), user = std::move(user)](HostContext& host) {
        const auto index = host.engine.find_drop(id);
        if (!index) return http_error(404, "unknown_drop", "no such drop");
        std::string out = "{\"orders\":[";
        bool first = true;
        for (const engine::OrderInfo& order : host.engine.orders_of(*index, user)) {
          out += first ? "{\"order_id\":" : ",{\"order_id\":";
          first = false;
          protocol::append_string(out, protocol::order_id(id, order.order));
          out += ",\"client_order_id\":";
          protocol::append_string(out, order.client_order_id);
          fmt::format_to(std::back_inserter(out),
                         ",\"qty\":{},\"status\":\"{}\",\"hold_expires_at_ms\":{}}}", order.qty,
                         engine::to_string(order.status), order.hold_expires_at_ms);
        }
        out += "]}";
        return HostReply{200, std::move(out)};
      },
      false, std::move(done));
}

HostReply mint(const json::object& body, const GatewayConfig& config) {
  std::string problem;
  const auto user = text(body, "user", engine::user_length_max, problem);
  const auto ttl = integer(body, "ttl_seconds", 1, 30 * 86'400, problem);
  if (!user || !ttl) return http_error(400, "invalid_argument", problem);
  if (!engine::is_valid_name(*user, engine::user_length_max))
    return http_error(400, "invalid_argument", "user must be 1-64 printable ASCII bytes");
  if (config.token_secret.empty())
    return http_error(409, "no_secret", "auth.token_secret is not configured");
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  std::string out = "{\"token\":";
  protocol::append_string(out, mint_token(config.token_secret, *user, now_s + *ttl));
  out += "}";
  return {200, std::move(out)};
}

}  // namespace

std::optional<HostReply> public_drops(ServerContext& context, std::function<void(HostReply)> done) {
  DropListCache& cache = context.drop_list;
  {
    std::lock_guard lock(cache.mutex);
    if (!cache.body.empty() &&
        std::chrono::steady_clock::now() - cache.read_at < DropListCache::fresh_for)
      return HostReply{200, cache.body};
    cache.waiting.push_back(std::move(done));
    if (cache.reading) return std::nullopt;
    cache.reading = true;
  }
  const auto answer_all = [&cache](HostReply reply) {
    std::vector<std::function<void(HostReply)>> waiting;
    {
      std::lock_guard lock(cache.mutex);
      if (reply.status == 200) {
        cache.body = reply.body;
        cache.read_at = std::chrono::steady_clock::now();
      }
      cache.reading = false;
      waiting.swap(cache.waiting);
    }
    for (auto& waiter : waiting) waiter(reply);
  };
  if (context.cluster != nullptr) {  // a gateway: every shard's list, merged
    context.cluster->forward(HttpRequest{http::verb::get, "/drops", 11}, answer_all);
    return std::nullopt;
  }
  auto refused = on_engine(
      context,
      [](HostContext& host) {
        std::string out = "{\"drops\":[";
        for (engine::DropIndex index = 0; index < host.engine.drop_count(); ++index) {
          const engine::DropInfo info = host.engine.drop_info(index);
          if (index > 0) out += ',';
          out += "{\"id\":";
          protocol::append_string(out, info.spec.id);
          out += ",\"title\":";
          protocol::append_string(out, info.spec.title);
          fmt::format_to(std::back_inserter(out),
                         ",\"price_cents\":{},\"state\":\"{}\",\"opens_at_ms\":{},"
                         "\"stock_left\":{},\"stock_total\":{}}}",
                         info.spec.price_cents, engine::to_string(info.state),
                         info.opens_at_ms ? std::to_string(*info.opens_at_ms) : "null",
                         info.stock_left, info.stock_total);
        }
        out += "]}";
        return HostReply{200, std::move(out)};
      },
      false, answer_all);
  if (refused) answer_all(std::move(*refused));
  return std::nullopt;
}

std::optional<HostReply> check_host_key(const HttpRequest& request, const GatewayConfig& config) {
  const auto authorization = request[http::field::authorization];
  const std::string expected = "Bearer " + config.host_key;
  if (authorization.size() != expected.size() ||
      CRYPTO_memcmp(authorization.data(), expected.data(), expected.size()) != 0)
    return http_error(401, "unauthorized", "Authorization: Bearer <host_key> required");
  return std::nullopt;
}

std::optional<HostReply> route_api(const HttpRequest& request, ServerContext& context,
                                   std::function<void(HostReply)> done) {
  if (auto refused = check_host_key(request, context.config)) return refused;

  std::string_view target = request.target();
  std::string_view query;
  if (const auto mark = target.find('?'); mark != std::string_view::npos) {
    query = target.substr(mark + 1);
    target = target.substr(0, mark);
  }
  const auto parts = segments(target.substr(std::string_view("/api/").size()));
  const bool post = request.method() == http::verb::post;
  const bool get = request.method() == http::verb::get;
  json::object body;
  if (post && !request.body().empty()) {
    json::error_code error;
    json::value parsed = json::parse(request.body(), error);
    if (error || !parsed.is_object())
      return http_error(400, "bad_json", "the body must be a JSON object");
    body = std::move(parsed.as_object());
  }
  if (parts.size() == 1 && parts[0] == "tokens") {
    if (!post) return http_error(405, "method_not_allowed", "use POST");
    return mint(body, context.config);
  }
  if (parts.empty() || parts[0] != "drops") return http_error(404, "not_found", "no such route");
  if (parts.size() == 1) {
    if (post) return create_drop(body, context, std::move(done));
    if (get) return read_drops({}, context, std::move(done));
    return http_error(405, "method_not_allowed", "use GET or POST");
  }
  if (parts.size() == 2) {
    if (!get) return http_error(405, "method_not_allowed", "use GET");
    return read_drops(parts[1], context, std::move(done));
  }
  if (parts.size() == 3 && parts[2] == "audit") {
    if (!get) return http_error(405, "method_not_allowed", "use GET");
    return read_audit(parts[1], context, std::move(done));
  }
  if (parts.size() == 3 && parts[2] == "orders") {
    if (!get) return http_error(405, "method_not_allowed", "use GET");
    const auto user = query_value(query, "user");
    if (!user || user->empty()) return http_error(400, "invalid_argument", "?user= is required");
    return read_orders(parts[1], *user, context, std::move(done));
  }
  if (parts.size() == 3) {
    if (!post) return http_error(405, "method_not_allowed", "use POST");
    return drop_action(parts[1], parts[2], body, context, std::move(done));
  }
  return http_error(404, "not_found", "no such route");
}

}  // namespace flashsale::gateway
