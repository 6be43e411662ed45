// See host_api.hpp. Status codes: 400 bad input, 401 no or wrong key, 403 a host on the
// operator's routes, 404 unknown route / stream / drop / host (another host's stream or drop
// among them), 405 wrong method, 409 exists / wrong state / a limit / a configured host, 429 too
// many wrong keys, 503 the journal or the host directory cannot take writes, or the engine is
// busy. docs/protocol.md, "Host API", has each code.
#include "host_api.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <algorithm>
#include <array>
#include <limits>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "clock.hpp"
#include "flashsale/gateway/json_keys.hpp"
#include "flashsale/gateway/tokens.hpp"
#include "host_json.hpp"

namespace flashsale::gateway {

namespace http = boost::beast::http;
namespace json = boost::json;
using engine::TimeMs;

namespace {

HostReply invalid(std::string_view problem) {
  return host_json::error(400, "invalid_argument", problem);
}
HostReply no_route() {
  return host_json::error(404, "not_found", "no such route");
}
HostReply wrong_method(std::string_view allowed) {
  return host_json::error(405, "method_not_allowed", fmt::format("use {}", allowed));
}

// The fields of a JSON body, each checked against its bound; the last problem is the answer.
// `prefix` names the object in problems ("variants[2]."); none for the body itself.
class Fields {
 public:
  explicit Fields(const json::object& body, std::string prefix = {})
      : body_(body), prefix_(std::move(prefix)) {}

  template <typename Number>
  Number integer(std::string_view field, std::int64_t min, std::int64_t max) {
    const json::value* value = body_.if_contains(field);
    if (value == nullptr || !value->is_int64() || value->get_int64() < min ||
        value->get_int64() > max) {
      fail(fmt::format("\"{}{}\" must be a whole number from {} to {}", prefix_, field, min, max));
      return Number{};
    }
    return static_cast<Number>(value->get_int64());
  }
  // Absent: 0 (or empty), which is no problem.
  template <typename Number>
  Number optional_integer(std::string_view field, std::int64_t min, std::int64_t max) {
    return body_.contains(field) ? integer<Number>(field, min, max) : Number{};
  }
  // Text is shown to viewers and written to logs: no control characters (NUL, ESC, newlines).
  std::string text(std::string_view field, std::size_t max) {
    const json::value* value = body_.if_contains(field);
    if (value == nullptr || !value->is_string() || value->get_string().size() > max) {
      fail(fmt::format("\"{}{}\" must be a string of at most {} bytes", prefix_, field, max));
      return {};
    }
    const json::string& text = value->get_string();
    if (std::any_of(text.begin(), text.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      fail(fmt::format("\"{}{}\" must not contain control characters", prefix_, field));
      return {};
    }
    return std::string(text);
  }
  std::string optional_text(std::string_view field, std::size_t max) {
    return body_.contains(field) ? text(field, max) : std::string();
  }
  // A variant's id, as orders and restocks name it.
  std::string variant_id(std::string_view field) {
    std::string id = text(field, engine::variant_id_length_max);
    if (!engine::is_valid_variant_id(id))
      fail(fmt::format("\"{}{}\" must be 1-{} of [A-Za-z0-9_.-]", prefix_, field,
                       engine::variant_id_length_max));
    return id;
  }
  // An instant (Unix ms) at most `ahead_max_ms` after `now_ms`. One already past is the
  // engine's to take as now: a host's "at 20:00" may reach it at 20:00:00.050.
  TimeMs instant(std::string_view field, TimeMs now_ms, TimeMs ahead_max_ms) {
    const auto at_ms = integer<TimeMs>(field, 0, std::numeric_limits<TimeMs>::max());
    if (at_ms > now_ms + ahead_max_ms)
      fail(fmt::format("\"{}{}\" must be at most {} days ahead", prefix_, field,
                       ahead_max_ms / day_ms));
    return at_ms;
  }
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  static constexpr TimeMs day_ms = TimeMs{24} * 3600 * 1000;
  void fail(std::string problem) { problem_ = std::move(problem); }
  const json::object& body_;
  const std::string prefix_;
  std::optional<std::string> problem_;
};

// A drop's variants: 1-64 objects, their ids unique, their stock together within a drop's.
std::variant<std::vector<host::Variant>, HostReply> read_variants(const json::value& value) {
  const json::array* list = value.if_array();
  if (list == nullptr || list->empty() || list->size() > engine::variants_max)
    return invalid(
        fmt::format("\"variants\" must be an array of 1 to {} objects", engine::variants_max));
  std::vector<host::Variant> variants;
  variants.reserve(list->size());
  std::uint64_t stock = 0;
  for (std::size_t index = 0; index < list->size(); ++index) {
    const json::object* object = (*list)[index].if_object();
    if (object == nullptr) return invalid(fmt::format("\"variants[{}]\" must be an object", index));
    Fields fields(*object, fmt::format("variants[{}].", index));
    host::Variant variant;
    variant.id = fields.variant_id("id");
    variant.label = fields.optional_text("label", engine::variant_label_length_max);
    variant.price_cents = fields.integer<std::int64_t>("price_cents", 0, engine::price_cents_max);
    // The price before the deal, shown struck through: never below the deal itself.
    variant.list_price_cents = fields.optional_integer<std::int64_t>(
        "list_price_cents", variant.price_cents, engine::price_cents_max);
    variant.stock = fields.integer<std::uint32_t>("stock", 0, engine::stock_max);
    if (fields.problem()) return invalid(*fields.problem());
    const auto same_id = [&](const host::Variant& other) { return other.id == variant.id; };
    if (std::any_of(variants.begin(), variants.end(), same_id))
      return invalid(fmt::format("\"variants[{}].id\": \"{}\" is given twice", index, variant.id));
    stock += variant.stock;
    variants.push_back(std::move(variant));
  }
  if (stock > engine::stock_max)
    return invalid(fmt::format("the variants' stock must add up to at most {}", engine::stock_max));
  return variants;
}

// What the drop sells: named variants, or (protocol v1) one unnamed variant priced and stocked
// at the top level. The two do not mix.
std::optional<HostReply> read_goods(const json::object& body, Fields& fields,
                                    host::CreateDrop& create) {
  const json::value* variants = body.if_contains("variants");
  if (variants == nullptr) {
    create.price_cents = fields.integer<std::int64_t>("price_cents", 0, engine::price_cents_max);
    create.list_price_cents = fields.optional_integer<std::int64_t>(
        "list_price_cents", create.price_cents, engine::price_cents_max);
    create.stock = fields.integer<std::uint32_t>("stock", 0, engine::stock_max);
    return std::nullopt;
  }
  for (const std::string_view own : {"price_cents", "list_price_cents", "stock"}) {
    if (body.contains(own))
      return invalid(fmt::format(
          "with \"variants\", \"{}\" is each variant's: leave it out at the top level", own));
  }
  auto read = read_variants(*variants);
  if (auto* refused = std::get_if<HostReply>(&read)) return std::move(*refused);
  create.variants = std::move(std::get<std::vector<host::Variant>>(read));
  return std::nullopt;
}

// When the sale opens, and how long it lasts: as a duration, or as the instant it ends.
std::optional<HostReply> read_schedule(const json::object& body, Fields& fields,
                                       host::CreateDrop& create) {
  if (body.contains("opens_at_ms"))
    create.opens_at_ms = fields.instant("opens_at_ms", wall_ms(), engine::countdown_ms_max);
  if (!body.contains("ends_at_ms")) {
    create.duration_ms = 1000 * fields.optional_integer<TimeMs>(
                                    "duration_seconds", engine::sale_duration_ms_min / 1000,
                                    engine::sale_duration_ms_max / 1000);
    return std::nullopt;
  }
  if (body.contains("duration_seconds"))
    return invalid("give \"duration_seconds\" or \"ends_at_ms\", not both");
  if (!create.opens_at_ms) return invalid("\"ends_at_ms\" needs \"opens_at_ms\"");
  const auto ends_at_ms =
      fields.integer<TimeMs>("ends_at_ms", 0, std::numeric_limits<TimeMs>::max());
  if (fields.problem()) return invalid(*fields.problem());
  if (ends_at_ms <= *create.opens_at_ms)
    return invalid("\"ends_at_ms\" must be after \"opens_at_ms\"");
  create.duration_ms = ends_at_ms - *create.opens_at_ms;
  if (create.duration_ms < engine::sale_duration_ms_min ||
      create.duration_ms > engine::sale_duration_ms_max)
    return invalid(fmt::format("\"ends_at_ms\" must be {} to {} seconds after \"opens_at_ms\"",
                               engine::sale_duration_ms_min / 1000,
                               engine::sale_duration_ms_max / 1000));
  return std::nullopt;
}

// The admission window's draw must be unpredictable to buyers: a fresh CSPRNG seed.
std::optional<std::uint64_t> admission_seed() {
  std::uint64_t seed = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) return std::nullopt;
  return seed;
}

HostReply no_seed() {
  return host_json::error(503, "unavailable", "no random seed for the admission draw");
}

std::variant<host::Command, HostReply> create_drop(const json::object& body,
                                                   const GatewayConfig& config) {
  Fields fields(body);
  host::CreateDrop create;
  create.id = fields.text("id", engine::drop_id_length_max);
  // "." and ".." are paths, not names: refused here, at the edge, since journals written before
  // this rule may hold such a drop and recovery must replay it.
  if (!create.id.empty() && create.id.find_first_not_of('.') == std::string::npos)
    return invalid("\"id\" must contain a character other than \".\"");
  create.title = fields.text("title", engine::title_length_max);
  if (auto refused = read_goods(body, fields, create)) return std::move(*refused);
  create.per_user_limit =
      fields.integer<std::uint32_t>("per_user_limit", 1, engine::per_user_limit_max);
  create.per_variant_limit =
      fields.optional_integer<std::uint32_t>("per_variant_limit", 1, engine::per_user_limit_max);
  create.hold_ms = 1000 * fields.integer<TimeMs>("hold_seconds", engine::hold_ms_min / 1000,
                                                 engine::hold_ms_max / 1000);
  create.waitlist_limit =
      fields.optional_integer<std::uint32_t>("waitlist_limit", 0, config.limits.waitlist_limit_max);
  create.admission_window_ms =
      fields.optional_integer<TimeMs>("admission_window_ms", 0, engine::admission_window_ms_max);
  create.pledge_bps =
      fields.optional_integer<std::uint32_t>("pledge_bps", 0, engine::pledge_bps_max);
  create.beneficiary = fields.optional_text("beneficiary", engine::beneficiary_length_max);
  create.beneficiary_note =
      fields.optional_text("beneficiary_note", engine::beneficiary_note_length_max);
  if (auto refused = read_schedule(body, fields, create)) return std::move(*refused);
  if (fields.problem()) return invalid(*fields.problem());
  if (create.per_variant_limit > create.per_user_limit)
    return invalid("\"per_variant_limit\" must be at most \"per_user_limit\"");
  if (create.duration_ms != 0 && create.duration_ms <= create.admission_window_ms)
    return invalid("the sale must last longer than its admission window");
  if (create.opens_at_ms) {
    const auto seed = admission_seed();
    if (!seed) return no_seed();
    create.admission_seed = *seed;
  }
  return create;
}

// An empty body reads as {}; false if the body is not a JSON object, or names a key twice.
bool read_body(const HttpRequest& request, json::object& body) {
  if (request.body().empty()) return true;
  json::error_code error;
  json::value parsed = json::parse(request.body(), error);
  if (error || !parsed.is_object() || repeats_a_key(request.body())) return false;
  body = std::move(parsed.as_object());
  return true;
}

// The request target as Boost.URL reads it: path segments and query values percent-decoded
// (a user named "a&b" is asked for as ?user=a%26b), or nothing if it is not a valid origin-form
// target.
struct Target {
  std::vector<std::string> segments;  // after "/api/"
  boost::urls::url_view url;
};

std::optional<Target> read_target(std::string_view target) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return std::nullopt;
  Target read{{}, *parsed};
  for (std::string segment : parsed->segments()) read.segments.push_back(std::move(segment));
  if (read.segments.empty() || read.segments[0] != "api") return std::nullopt;
  read.segments.erase(read.segments.begin());
  return read;
}

std::optional<std::string> query_value(boost::urls::url_view url, std::string_view key) {
  const auto found = url.params().find(key);
  if (found == url.params().end() || !(*found).has_value) return std::nullopt;
  return std::string((*found).value);
}

HostReply mint(const json::object& body, const GatewayConfig& config) {
  Fields fields(body);
  const std::string user = fields.text("user", engine::user_length_max);
  const auto ttl = fields.integer<std::int64_t>("ttl_seconds", 1, config.token_lifetime_max_s);
  if (fields.problem()) return invalid(*fields.problem());
  if (!engine::is_valid_name(user, engine::user_length_max))
    return invalid("user must be 1-64 printable ASCII bytes");
  if (config.token_secret.empty())
    return host_json::error(409, "no_secret", "auth.token_secret is not configured");
  return {200, host_json::token(mint_token(config.token_secret, user, wall_ms() / 1000 + ttl))};
}

// A call on host accounts, for the HostDirectory.
struct HostsCall {
  enum class Op : std::uint8_t { create, list, rotate, revoke } op;
  std::string id;
};

using Answer = std::variant<host::Command, HostReply, HostsCall>;

// What a route's handler reads: the body (a JSON object, {} when empty or not a POST), the
// target, the segment its path's "{…}" matched, and whom the call acts for.
struct Call {
  const json::object& body;
  const Target& target;
  std::string param;
  const GatewayConfig& config;
  const host::Caller& caller;
  const HostDirectory& hosts;

  // Whether `id` is a host: the configured one, or an account (revoked ones included: their
  // streams are still theirs).
  bool known_host(std::string_view id) const {
    return (!config.host_key.empty() && id == config.host_id) || hosts.knows(id);
  }
};

Answer countdown(const Call& call) {
  Fields fields(call.body);
  const bool at = call.body.contains("opens_at_ms");
  if (at == call.body.contains("seconds"))
    return invalid("give exactly one of \"seconds\" and \"opens_at_ms\"");
  host::StartCountdown countdown{call.param};
  if (at) {
    countdown.opens_at_ms = fields.instant("opens_at_ms", wall_ms(), engine::countdown_ms_max);
  } else {
    countdown.opens_in_ms =
        1000 * fields.integer<TimeMs>("seconds", 0, engine::countdown_ms_max / 1000);
  }
  if (fields.problem()) return invalid(*fields.problem());
  const auto seed = admission_seed();
  if (!seed) return no_seed();
  countdown.admission_seed = *seed;
  return countdown;
}

Answer restock(const Call& call) {
  Fields fields(call.body);
  host::Restock restock{call.param, fields.integer<std::uint32_t>("add", 1, engine::stock_max)};
  if (call.body.contains("variant")) restock.variant = fields.variant_id("variant");
  if (fields.problem()) return invalid(*fields.problem());
  return restock;
}

Answer read_orders(const Call& call) {
  auto user = query_value(call.target.url, "user");
  if (!user || user->empty()) return invalid("?user= is required");
  return host::ReadOrders{call.param, std::move(*user)};
}

Answer answer_of(std::variant<host::Command, HostReply> either) {
  return std::visit([](auto&& one) -> Answer { return std::move(one); }, std::move(either));
}

HostReply unknown_stream() {
  return host_json::error(404, "unknown_stream", "no such stream");
}

// A URL a viewer's page may show the stream from: http(s), absolute, without credentials.
bool is_video_url(std::string_view text) {
  const auto url = boost::urls::parse_absolute_uri(text);
  return url &&
         (url->scheme_id() == boost::urls::scheme::https ||
          url->scheme_id() == boost::urls::scheme::http) &&
         url->has_authority() && !url->has_userinfo() && !url->host().empty();
}

Answer create_stream(const Call& call) {
  Fields fields(call.body);
  host::CreateStream create;
  create.id = fields.text("id", engine::stream_id_length_max);
  create.title = fields.text("title", engine::stream_title_length_max);
  create.video_url = fields.optional_text("video_url", engine::video_url_length_max);
  if (call.caller.is_operator || call.body.contains("host"))
    create.host = fields.text("host", engine::host_id_length_max);
  if (fields.problem()) return invalid(*fields.problem());
  if (!engine::is_valid_stream_id(create.id))
    return invalid(
        fmt::format("\"id\" must be 1-{} of [A-Za-z0-9_.-]", engine::stream_id_length_max));
  if (!create.video_url.empty() && !is_video_url(create.video_url))
    return invalid("\"video_url\" must be an absolute http(s) URL without credentials");
  if (call.caller.is_operator) {
    if (!engine::is_valid_host_id(create.host))
      return invalid("the operator names the stream's \"host\": 1-32 of [A-Za-z0-9_.-]");
    if (!call.known_host(create.host))
      return host_json::error(404, "unknown_host", "no such host to own the stream");
  } else if (call.body.contains("host") && create.host != call.caller.host) {
    return host_json::error(403, "forbidden", "a host creates streams for itself only");
  } else {
    create.host = call.caller.host;
  }
  return create;
}

// A drop in the stream of the path: its "id" is the drop's name there, its id "<stream>~<name>".
Answer create_stream_drop(const Call& call) {
  if (!engine::is_valid_stream_id(call.param)) return unknown_stream();
  json::object body = call.body;
  if (const json::value* name = body.if_contains("id"); name != nullptr && name->is_string()) {
    if (name->get_string().find('~') != json::string::npos)
      return invalid("\"id\" is the drop's name in the stream: no \"~\"");
    body["id"] = fmt::format("{}~{}", call.param, std::string_view(name->get_string()));
  }
  auto answer = create_drop(body, call.config);
  if (auto* create = std::get_if<host::Command>(&answer))
    std::get<host::CreateDrop>(*create).stream = call.param;
  return answer_of(std::move(answer));
}

Answer pin(const Call& call) {
  Fields fields(call.body);
  std::string drop = fields.text("drop", engine::drop_id_length_max);
  if (fields.problem()) return invalid(*fields.problem());
  // A name in the stream, or the drop's whole id.
  if (drop.find('~') == std::string::npos) drop = fmt::format("{}~{}", call.param, drop);
  return host::Pin{call.param, std::move(drop)};
}

// The {host} of an operator's call on a configured host, which only the config changes.
std::optional<HostReply> configured(const Call& call) {
  if (call.config.host_key.empty() || call.param != call.config.host_id) return std::nullopt;
  return host_json::error(409, "configured",
                          "this host is configured (auth.host_key); change it in the config");
}

Answer create_host(const Call& call) {
  Fields fields(call.body);
  std::string id = fields.text("id", engine::host_id_length_max);
  if (fields.problem()) return invalid(*fields.problem());
  if (!engine::is_valid_host_id(id))
    return invalid("\"id\" must be 1-32 of [A-Za-z0-9_.-], not all dots");
  if (!call.config.host_key.empty() && id == call.config.host_id)
    return host_json::error(409, "already_exists", "the configured host has this id");
  return HostsCall{HostsCall::Op::create, std::move(id)};
}

Answer change_host(const Call& call, HostsCall::Op op) {
  if (auto refused = configured(call)) return std::move(*refused);
  return HostsCall{op, call.param};
}

using http::verb;
using Access = ApiRoute::Access;

struct Route {
  ApiRoute api;
  Answer (*handle)(const Call&);
  // How a reply the handler gives itself is timed: as a refusal, except where answering at
  // once is the route's work (minting a token).
  std::size_t replies_as = Metrics::host_route_refused;
};

constexpr std::array routes{
    Route{{verb::post, "/api/drops"},
          [](const Call& call) { return answer_of(create_drop(call.body, call.config)); }},
    Route{{verb::get, "/api/drops"}, [](const Call&) -> Answer { return host::ReadDrops{}; }},
    Route{{verb::get, "/api/drops/{drop}"},
          [](const Call& call) -> Answer { return host::ReadDrop{call.param}; }},
    Route{{verb::get, "/api/drops/{drop}/audit"},
          [](const Call& call) -> Answer { return host::ReadAudit{call.param}; }},
    Route{{verb::get, "/api/drops/{drop}/orders"}, read_orders},
    Route{{verb::post, "/api/drops/{drop}/countdown"}, countdown},
    Route{{verb::post, "/api/drops/{drop}/restock"}, restock},
    Route{{verb::post, "/api/drops/{drop}/close"},
          [](const Call& call) -> Answer { return host::CloseDrop{call.param}; }},
    Route{{verb::post, "/api/streams"}, create_stream},
    Route{{verb::get, "/api/streams"}, [](const Call&) -> Answer { return host::ReadStreams{}; }},
    Route{{verb::get, "/api/streams/{stream}"},
          [](const Call& call) -> Answer { return host::ReadStream{call.param}; }},
    Route{{verb::post, "/api/streams/{stream}/drops"}, create_stream_drop},
    Route{{verb::post, "/api/streams/{stream}/live"},
          [](const Call& call) -> Answer { return host::GoLive{call.param}; }},
    Route{{verb::post, "/api/streams/{stream}/pin"}, pin},
    Route{{verb::post, "/api/streams/{stream}/unpin"},
          [](const Call& call) -> Answer {
            return host::Pin{call.param, {}};
          }},
    Route{{verb::post, "/api/streams/{stream}/end"},
          [](const Call& call) -> Answer { return host::EndStream{call.param}; }},
    Route{{verb::post, "/api/tokens"},
          [](const Call& call) -> Answer { return mint(call.body, call.config); },
          Metrics::host_route_tokens},
    Route{{verb::post, "/api/admin/hosts", Access::operator_only}, create_host},
    Route{{verb::get, "/api/admin/hosts", Access::operator_only},
          [](const Call&) -> Answer {
            return HostsCall{HostsCall::Op::list, {}};
          }},
    Route{{verb::post, "/api/admin/hosts/{host}/key", Access::operator_only},
          [](const Call& call) { return change_host(call, HostsCall::Op::rotate); }},
    Route{{verb::post, "/api/admin/hosts/{host}/revoke", Access::operator_only},
          [](const Call& call) { return change_host(call, HostsCall::Op::revoke); }},
};

constexpr std::array api_route_list = [] {
  std::array<ApiRoute, routes.size()> list{};
  for (std::size_t index = 0; index < routes.size(); ++index) list[index] = routes[index].api;
  return list;
}();

// Whether `segments` (after "/api/") fit `path`, whose one "{…}" takes any one segment;
// `param` gets that segment.
bool fits(std::string_view path, const std::vector<std::string>& segments, std::string& param) {
  path.remove_prefix(std::string_view("/api/").size());
  for (const std::string& segment : segments) {
    if (path.empty()) return false;
    const std::string_view part = path.substr(0, path.find('/'));
    path.remove_prefix(std::min(path.size(), part.size() + 1));
    if (part.starts_with('{'))
      param = segment;
    else if (part != segment)
      return false;
  }
  return path.empty();
}

// The route for `request`, with its {…}; or the refusal: 404 when no path fits, 405 (naming
// the methods that would) when only the method is wrong.
std::variant<std::pair<const Route*, std::string>, HostReply> find_route(const HttpRequest& request,
                                                                         const Target& target) {
  std::string allowed;
  for (const Route& route : routes) {
    std::string param;
    if (!fits(route.api.path, target.segments, param)) continue;
    if (route.api.method == request.method()) return std::pair{&route, std::move(param)};
    allowed += allowed.empty() ? "" : " or ";
    allowed += http::to_string(route.api.method);
  }
  if (allowed.empty()) return no_route();
  return wrong_method(allowed);
}

// Times a host call from its request read to its reply, by route (Metrics::host_calls).
class CallTimer {
 public:
  explicit CallTimer(Metrics& metrics) : metrics_(metrics) {}

  HostReply answered(std::size_t route, HostReply reply) const {
    metrics_.host_calls[route].observe(std::chrono::steady_clock::now() - started_);
    return reply;
  }
  std::function<void(HostReply)> answer_later(std::size_t route,
                                              std::function<void(HostReply)> done) const {
    return [timer = *this, route, done = std::move(done)](HostReply reply) {
      done(timer.answered(route, std::move(reply)));
    };
  }

 private:
  Metrics& metrics_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Sends a command to the engine thread, timed under its own name.
std::optional<HostReply> submit(ServerContext& context, host::Command command,
                                const host::Caller& caller, std::function<void(HostReply)> done,
                                const CallTimer& timer) {
  const std::size_t route = command.index();
  if (!context.requests.submit(
          HostRequest{std::move(command), caller, timer.answer_later(route, std::move(done)), {}}))
    return timer.answered(route, host_json::error(503, "busy", "the engine is busy; retry"));
  return std::nullopt;
}

HostReply hosts_reply(HostsCall::Op op, HostDirectory::Result result, const GatewayConfig& config) {
  using Status = HostDirectory::Status;
  switch (result.status) {
    case Status::ok:
      break;
    case Status::already_exists:
      return host_json::error(409, "already_exists", "a host with this id exists (or existed)");
    case Status::unknown_host:
      return host_json::error(404, "unknown_host", "no such host");
    case Status::limit_reached:
      return host_json::error(409, "limit_reached", "limits.hosts_max hosts exist");
    case Status::unavailable:
      return host_json::error(503, "unavailable", "the host directory cannot be reached; retry");
  }
  if (op == HostsCall::Op::list)
    return {200, host_json::host_accounts(
                     result.hosts, config.host_key.empty() ? std::string_view() : config.host_id)};
  return {op == HostsCall::Op::create ? 201u : 200u,
          host_json::host_account(result.hosts.front(), result.key)};
}

// Sends a call on host accounts to the directory, timed as "hosts".
std::optional<HostReply> submit(ServerContext& context, HostsCall call,
                                std::function<void(HostReply)> done, const CallTimer& timer) {
  auto answer = timer.answer_later(Metrics::host_route_hosts, std::move(done));
  HostDirectory::Done finish = [op = call.op, &config = context.config,
                                answer = std::move(answer)](HostDirectory::Result result) {
    answer(hosts_reply(op, std::move(result), config));
  };
  switch (call.op) {
    case HostsCall::Op::create:
      context.hosts.create(std::move(call.id), std::move(finish));
      break;
    case HostsCall::Op::list:
      context.hosts.list(std::move(finish));
      break;
    case HostsCall::Op::rotate:
      context.hosts.rotate(std::move(call.id), std::move(finish));
      break;
    case HostsCall::Op::revoke:
      context.hosts.revoke(std::move(call.id), std::move(finish));
      break;
  }
  return std::nullopt;
}

// Whether `given` is `expected`, compared as SHA-256 digests in constant time: neither the
// key's bytes nor its length show in how long a wrong guess takes.
bool same_key(std::string_view given, std::string_view expected) {
  const auto one = key_digest(given);
  const auto other = key_digest(expected);
  return CRYPTO_memcmp(one.data(), other.data(), one.size()) == 0;
}

}  // namespace

std::variant<host::Caller, HostReply> authenticate(const HttpRequest& request,
                                                   ServerContext& context,
                                                   const boost::asio::ip::address& source) {
  if (!context.source_limits.may_try_host_key(source)) {
    context.metrics.count_limited(Limit::host_key_failures);
    return host_json::error(429, "rate_limited", "too many wrong host keys from your address");
  }
  constexpr std::string_view scheme = "Bearer ";
  const std::string_view header = request[http::field::authorization];
  if (header.starts_with(scheme)) {
    const std::string_view key = header.substr(scheme.size());
    const GatewayConfig& config = context.config;
    if (!config.admin_key.empty() && same_key(key, config.admin_key))
      return host::Caller::operator_();
    if (!config.host_key.empty() && same_key(key, config.host_key))
      return host::Caller::of(config.host_id);
    if (auto host = context.hosts.authenticate(key)) return host::Caller::of(std::move(*host));
  }
  context.source_limits.wrong_host_key(source);
  return host_json::error(401, "unauthorized", "Authorization: Bearer <key> required");
}

std::span<const ApiRoute> api_routes() {
  return api_route_list;
}

std::optional<HostReply> route_api(const HttpRequest& request, ServerContext& context,
                                   const boost::asio::ip::address& source,
                                   std::function<void(HostReply)> done) {
  const CallTimer timer(context.metrics);
  const auto refuse = [&timer](HostReply reply) {
    return timer.answered(Metrics::host_route_refused, std::move(reply));
  };
  auto caller = authenticate(request, context, source);
  if (auto* refused = std::get_if<HostReply>(&caller)) return refuse(std::move(*refused));
  const host::Caller& who = std::get<host::Caller>(caller);
  const auto target = read_target(request.target());
  if (!target) return refuse(no_route());
  auto found = find_route(request, *target);
  if (auto* refused = std::get_if<HostReply>(&found)) return refuse(std::move(*refused));
  auto& [route, param] = std::get<0>(found);
  if (route->api.access == Access::operator_only && !who.is_operator)
    return refuse(host_json::error(403, "forbidden", "only the operator may do this"));
  json::object body;
  if (request.method() == http::verb::post && !read_body(request, body))
    return refuse(
        host_json::error(400, "bad_json", "the body must be a JSON object, each key once"));
  Answer answer =
      route->handle(Call{body, *target, std::move(param), context.config, who, context.hosts});
  if (auto* reply = std::get_if<HostReply>(&answer))
    return timer.answered(route->replies_as, std::move(*reply));
  if (auto* hosts = std::get_if<HostsCall>(&answer))
    return submit(context, std::move(*hosts), std::move(done), timer);
  return submit(context, std::move(std::get<host::Command>(answer)), who, std::move(done), timer);
}

std::optional<HostReply> public_drops(ServerContext& context, std::function<void(HostReply)> done) {
  DropListCache& cache = context.drop_list;
  const CallTimer timer(context.metrics);
  static const std::size_t route = host::Command(host::ListDrops{}).index();
  {
    std::lock_guard lock(cache.mutex);
    if (!cache.body.empty() &&
        std::chrono::steady_clock::now() - cache.read_at < DropListCache::fresh_for)
      return timer.answered(route, HostReply{200, cache.body});
    cache.waiting.push_back(timer.answer_later(route, std::move(done)));
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
  if (!context.requests.submit(HostRequest{host::ListDrops{}, host::Caller{}, answer_all, {}}))
    answer_all(host_json::error(503, "busy", "the engine is busy; retry"));
  return std::nullopt;
}

}  // namespace flashsale::gateway
