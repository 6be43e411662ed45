// ServerTls: the certificate and key the viewers' port speaks TLS with (server.tls_certificate,
// server.tls_private_key), and reloading them without a restart.
//
// Each new connection takes the context current at its accept; reload() builds a new one from
// the files and swaps it in only if it loads whole (a half-written file keeps the old one, and
// says so in the log). Connections already up keep theirs: an OpenSSL connection holds a
// reference to the SSL_CTX it was made from, so replacing the context here frees it only when
// its last connection ends.
//
// TLS 1.2 and 1.3 only, OpenSSL's default ciphers for them. Idle connections give their read
// and write buffers back (SSL_MODE_RELEASE_BUFFERS): 20,000 open viewers would otherwise hold
// ~34 KB each for nothing.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace flashsale::gateway {

class ServerTls {
 public:
  // Throws std::runtime_error naming the file that cannot be used (start-up).
  ServerTls(std::string certificate_path, std::string private_key_path);

  // Any thread.
  std::shared_ptr<boost::asio::ssl::context> context() const;
  // Reads the files again. True if the new certificate is in use; false (and logged, the old
  // one kept) if not. Any thread.
  bool reload();
  // When the certificate in use expires, in seconds since the epoch (for a metric and alerts).
  std::int64_t expires_at_s() const;

 private:
  struct Loaded {
    std::shared_ptr<boost::asio::ssl::context> context;
    std::int64_t expires_at_s = 0;
  };
  Loaded load() const;  // throws std::runtime_error

  const std::string certificate_path_;
  const std::string private_key_path_;
  mutable std::mutex mutex_;
  Loaded current_;
};

}  // namespace flashsale::gateway
