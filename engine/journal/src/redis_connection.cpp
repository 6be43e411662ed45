// See redis_connection.hpp.
#include "flashsale/journal/redis_connection.hpp"

#include <boost/url/parse.hpp>

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

}  // namespace

RedisEndpoint RedisEndpoint::from_command_line(std::string_view text) {
  RedisEndpoint endpoint = parse(text);
  if (endpoint.password.empty()) {
    if (const char* password = std::getenv("FLASHSALE_REDIS_PASSWORD"))
      endpoint.password = password;
    if (const char* user = std::getenv("FLASHSALE_REDIS_USER")) endpoint.user = user;
  }
  return endpoint;
}

RedisEndpoint RedisEndpoint::parse(std::string_view text) {
  if (text.starts_with("redis://")) return parse_url(text);
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
  const timeval tv = to_timeval(timeout);
  context_ = endpoint.unix_socket.empty()
                 ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
                 : redisConnectUnixWithTimeout(endpoint.unix_socket.c_str(), tv);
  if (context_ == nullptr) {
    error_ = "out of memory allocating a redis context";
    return;
  }
  if (context_->err != 0) {
    error_ = context_->errstr;
    return;
  }
  if (redisSetTimeout(context_, tv) != REDIS_OK) {
    error_ = "cannot set the redis timeout";
    return;
  }
  if (endpoint.password.empty()) return;
  std::vector<std::string_view> auth{"AUTH"};
  if (!endpoint.user.empty()) auth.push_back(endpoint.user);
  auth.push_back(endpoint.password);
  const Reply reply = command(auth);
  // Redis's answer (WRONGPASS, or no password set) never repeats the password.
  if (reply != nullptr && reply->type == REDIS_REPLY_ERROR)
    error_ = "redis refused AUTH: " + std::string(reply->str, reply->len);
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
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
  return Reply(static_cast<redisReply*>(reply));
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
