// See redis_connection.hpp.
#include "flashsale/journal/redis_connection.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>

#include <sys/socket.h>

#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace flashsale::journal {

namespace {

int parse_port(std::string_view port, std::string_view where) {
  int number = 0;
  const auto [end, problem] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (problem != std::errc{} || end != port.data() + port.size() || number < 1 || number > 65535)
    throw std::invalid_argument("bad redis port in " + std::string(where));
  return number;
}

// redis://[USER[:PASSWORD]@]HOST:PORT, read by Boost.URL: the userinfo is percent-decoded, so a
// password may hold any byte.
RedisEndpoint parse_url(std::string_view text) {
  const auto url = boost::urls::parse_uri(text);
  if (!url || url->scheme() != "redis" || !url->has_authority() || !url->has_port() ||
      url->host().empty() || !(url->path().empty() || url->path() == "/") || url->has_query())
    throw std::invalid_argument(
        "a redis URL must be redis://[USER[:PASSWORD]@]HOST:PORT (credentials not shown)");
  RedisEndpoint endpoint;
  endpoint.host = url->host_address();
  endpoint.port = parse_port(url->port(), url->host_address());
  if (url->has_userinfo()) {
    endpoint.user = url->user();
    if (url->has_password()) endpoint.password = url->password();
    if (endpoint.password.empty()) {  // redis://secret@host: a password alone, like redis-cli
      endpoint.password = std::move(endpoint.user);
      endpoint.user.clear();
    }
  }
  return endpoint;
}

std::string percent_decoded(std::string_view text) {
  const auto decoded = boost::urls::make_pct_string_view(text);
  if (!decoded) throw std::invalid_argument("bad percent-encoding in the sentinel URL credentials");
  return decoded->decode();
}

HostPort parse_host_port(std::string_view text, std::string_view where) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    throw std::invalid_argument("expected HOST:PORT in " + std::string(where) + ": " +
                                std::string(text));
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')  // [IPv6]
    host = host.substr(1, host.size() - 2);
  return {std::string(host), parse_port(text.substr(colon + 1), text)};
}

// sentinel://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/NAME. Boost.URL reads one host per
// authority, so the list is split here; the credentials are percent-decoded as in redis://.
RedisEndpoint parse_sentinel_url(std::string_view text) {
  constexpr std::string_view usage =
      "a sentinel URL must be sentinel://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/NAME "
      "(credentials not shown)";
  std::string_view rest = text.substr(std::string_view("sentinel://").size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) throw std::invalid_argument(std::string(usage));
  std::string_view authority = rest.substr(0, slash);
  RedisEndpoint endpoint;
  endpoint.sentinel_master = std::string(rest.substr(slash + 1));
  if (endpoint.sentinel_master.empty() ||
      endpoint.sentinel_master.find_first_of("/?#@ ") != std::string::npos)
    throw std::invalid_argument(std::string(usage));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {  // a password alone, like redis-cli
      endpoint.password = percent_decoded(userinfo);
    } else {
      endpoint.user = percent_decoded(userinfo.substr(0, colon));
      endpoint.password = percent_decoded(userinfo.substr(colon + 1));
    }
  }
  for (std::size_t start = 0;;) {  // every piece between commas is a HOST:PORT
    const auto comma = authority.find(',', start);
    endpoint.sentinels.push_back(
        parse_host_port(authority.substr(start, comma - start), "a sentinel URL"));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return endpoint;
}

}  // namespace

RedisEndpoint RedisEndpoint::from_command_line(std::string_view text) {
  RedisEndpoint endpoint = parse(text);
  if (endpoint.password.empty()) {
    if (const char* password = std::getenv("FLASHSALE_REDIS_PASSWORD"))
      endpoint.password = password;
    if (const char* user = std::getenv("FLASHSALE_REDIS_USER")) endpoint.user = user;
  }
  if (const char* password = std::getenv("FLASHSALE_SENTINEL_PASSWORD"))
    endpoint.sentinel_password = password;
  if (const char* user = std::getenv("FLASHSALE_SENTINEL_USER")) endpoint.sentinel_user = user;
  return endpoint;
}

RedisEndpoint RedisEndpoint::parse(std::string_view text) {
  if (text.starts_with("redis://")) return parse_url(text);
  if (text.starts_with("sentinel://")) return parse_sentinel_url(text);
  RedisEndpoint endpoint;
  if (text.find('/') != std::string_view::npos) {
    endpoint.unix_socket = std::string(text);
    return endpoint;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    throw std::invalid_argument("redis address must be HOST:PORT, redis://… or a socket path: " +
                                std::string(text));
  endpoint.port = parse_port(text.substr(colon + 1), text);
  endpoint.host = std::string(text.substr(0, colon));
  return endpoint;
}

std::string RedisEndpoint::describe() const {
  if (behind_sentinel()) {
    std::string text = "sentinel://";
    for (const HostPort& sentinel : sentinels) {
      const bool ipv6 = sentinel.host.find(':') != std::string::npos;
      text += (text.size() > 11 ? "," : "") + (ipv6 ? "[" + sentinel.host + "]" : sentinel.host) +
              ":" + std::to_string(sentinel.port);
    }
    return text + "/" + sentinel_master;
  }
  return unix_socket.empty() ? host + ":" + std::to_string(port) : unix_socket;
}

namespace {

timeval to_timeval(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(timeout.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((timeout.count() % 1000) * 1000);
  return tv;
}

}  // namespace

void RedisConnection::set_timeout(std::chrono::milliseconds timeout) {
  if (ok() && redisSetTimeout(context_, to_timeval(timeout)) != REDIS_OK)
    error_ = "cannot set the redis timeout";
}

RedisConnection::RedisConnection(const RedisEndpoint& endpoint, std::chrono::milliseconds timeout) {
  if (!endpoint.behind_sentinel()) {
    open({endpoint.host, endpoint.port}, endpoint.unix_socket, timeout, endpoint.user,
         endpoint.password);
    return;
  }
  const std::optional<HostPort> primary = ask_sentinels(endpoint, timeout);
  if (!primary) return;
  if (open(*primary, {}, timeout, endpoint.user, endpoint.password)) check_primary();
}

bool RedisConnection::open(const HostPort& node, const std::string& unix_socket,
                           std::chrono::milliseconds timeout, const std::string& user,
                           const std::string& password) {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  error_.clear();
  peer_ = unix_socket.empty() ? node.host + ":" + std::to_string(node.port) : unix_socket;
  const timeval tv = to_timeval(timeout);
  context_ = unix_socket.empty() ? redisConnectWithTimeout(node.host.c_str(), node.port, tv)
                                 : redisConnectUnixWithTimeout(unix_socket.c_str(), tv);
  if (context_ == nullptr) {
    error_ = "out of memory allocating a redis context";
    return false;
  }
  if (context_->err != 0) {
    error_ = peer_ + ": " + context_->errstr;
    return false;
  }
  if (redisSetTimeout(context_, tv) != REDIS_OK) {
    error_ = "cannot set the redis timeout";
    return false;
  }
  if (password.empty()) return true;
  std::vector<std::string_view> auth{"AUTH"};
  if (!user.empty()) auth.push_back(user);
  auth.push_back(password);
  const Reply reply = command(auth);
  // Redis's answer (WRONGPASS, or no password set) never repeats the password.
  if (reply != nullptr && reply->type == REDIS_REPLY_ERROR)
    error_ = peer_ + " refused AUTH: " + std::string(reply->str, reply->len);
  return ok();
}

// In the order given, as Redis's guidelines for Sentinel clients say; a sentinel that cannot be
// reached, refuses us or does not know the set is passed over, and the last such reason kept.
std::optional<HostPort> RedisConnection::ask_sentinels(const RedisEndpoint& endpoint,
                                                       std::chrono::milliseconds timeout) {
  std::string problems;
  for (const HostPort& sentinel : endpoint.sentinels) {
    if (!open(sentinel, {}, timeout, endpoint.sentinel_user, endpoint.sentinel_password)) {
      problems += "; " + error();
      continue;
    }
    const Reply reply = command({"SENTINEL", "get-master-addr-by-name", endpoint.sentinel_master});
    if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
      try {
        return HostPort{std::string(text_of(reply->element[0])),
                        parse_port(text_of(reply->element[1]), "a sentinel's answer")};
      } catch (const std::invalid_argument& bad) {
        problems += "; " + peer_ + ": " + bad.what();
        continue;
      }
    }
    problems +=
        "; " + peer_ + ": " +
        (reply == nullptr  ? error()
         : is_error(reply) ? std::string(text_of(reply))
                           : "does not know a primary named '" + endpoint.sentinel_master + "'");
  }
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  error_ = "no sentinel named the primary of '" + endpoint.sentinel_master + "'" + problems;
  return std::nullopt;
}

// A sentinel may name a node that is not a primary (yet, or any more) while a failover is under
// way: writing to it would be refused, and reading from it could read a stale copy.
void RedisConnection::check_primary() {
  const Reply reply = command({"ROLE"});
  if (reply == nullptr) return;
  const bool primary = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                       text_of(reply->element[0]) == "master";
  if (!primary)
    error_ = peer_ + " was named the primary by a sentinel but is not one (" +
             (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
                  ? std::string(text_of(reply->element[0]))
                  : std::string(text_of(reply))) +
             ")";
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

void RedisConnection::interrupt() noexcept {
  if (context_ != nullptr && context_->fd >= 0) ::shutdown(context_->fd, SHUT_RDWR);
}

bool RedisConnection::ok() const noexcept {
  return context_ != nullptr && context_->err == 0 && error_.empty();
}

std::string RedisConnection::error() const {
  if (!error_.empty()) return error_;
  if (context_ != nullptr && context_->err != 0) return context_->errstr;
  return {};
}

void RedisConnection::append(const std::vector<std::string_view>& arguments) {
  if (!ok()) return;
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  pointers.reserve(arguments.size());
  lengths.reserve(arguments.size());
  for (const std::string_view argument : arguments) {
    pointers.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(arguments.size()), pointers.data(),
                             lengths.data()) != REDIS_OK)
    error_ = "cannot queue a redis command";
}

Reply RedisConnection::read() {
  if (!ok()) return nullptr;
  void* reply = nullptr;
  if (redisGetReply(context_, &reply) != REDIS_OK || reply == nullptr) {
    if (error_.empty()) error_ = context_->err != 0 ? context_->errstr : "no reply from redis";
    if (reply != nullptr) freeReplyObject(reply);
    return nullptr;
  }
  Reply owned(static_cast<redisReply*>(reply));
  // The node was demoted under us (a failover): nothing this connection sends will be written.
  if (is_error(owned) && text_of(owned).starts_with("READONLY")) {
    error_ = peer_ + " is no longer the primary: " + std::string(text_of(owned));
    return nullptr;
  }
  return owned;
}

Reply RedisConnection::command(const std::vector<std::string_view>& arguments) {
  append(arguments);
  return read();
}

bool is_error(const Reply& reply) noexcept {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}

std::string_view text_of(const Reply& reply) noexcept {
  return text_of(reply.get());
}

std::string_view text_of(const redisReply* reply) noexcept {
  if (reply == nullptr || reply->str == nullptr) return {};
  return {reply->str, reply->len};
}

std::vector<StreamEntry> entries_of(const Reply& reply, bool& malformed) {
  std::vector<StreamEntry> entries;
  malformed = reply == nullptr || reply->type != REDIS_REPLY_ARRAY;
  if (malformed) return entries;
  for (std::size_t index = 0; index < reply->elements; ++index) {
    const redisReply* entry = reply->element[index];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY) {
      malformed = true;
      return entries;
    }
    const redisReply* id = entry->element[0];
    const redisReply* fields = entry->element[1];
    StreamEntry parsed{{id->str, id->len}, {}};
    for (std::size_t field = 0; field + 1 < fields->elements; field += 2) {
      if (fields->element[field]->type == REDIS_REPLY_STRING &&
          std::string_view(fields->element[field]->str, fields->element[field]->len) == "b")
        parsed.batch = {fields->element[field + 1]->str, fields->element[field + 1]->len};
    }
    if (parsed.batch.empty()) {
      malformed = true;
      return entries;
    }
    entries.push_back(parsed);
  }
  return entries;
}

}  // namespace flashsale::journal
