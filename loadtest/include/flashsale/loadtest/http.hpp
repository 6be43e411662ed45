// One-shot HTTP calls to a flashsale server's host API, for the load tester and the tests:
// a fresh connection per call, synchronous, JSON bodies.
#pragma once

#include <string>
#include <string_view>

namespace flashsale::loadtest {

struct HttpReply {
  unsigned status = 0;
  std::string body;
};

struct HttpTarget {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
  bool tls = false;  // https://, with no check of the certificate (a load tester measures)
  // "http://HOST:PORT" or "https://HOST:PORT"; throws std::invalid_argument otherwise.
  static HttpTarget parse(std::string_view url);
};

// `host_key` empty: no Authorization header. Throws on connection failure, and when the server
// has not answered within 10 s.
HttpReply http_call(const HttpTarget& target, std::string_view method, std::string_view path,
                    std::string_view body = {}, std::string_view host_key = {});

}  // namespace flashsale::loadtest
