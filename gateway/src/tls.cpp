// See tls.hpp.
#include "tls.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <stdexcept>

namespace flashsale::gateway {

namespace ssl = boost::asio::ssl;

ServerTls::ServerTls(std::string certificate_path, std::string private_key_path)
    : certificate_path_(std::move(certificate_path)),
      private_key_path_(std::move(private_key_path)),
      current_(load()) {}

std::shared_ptr<ssl::context> ServerTls::context() const {
  std::lock_guard lock(mutex_);
  return current_.context;
}

std::int64_t ServerTls::expires_at_s() const {
  std::lock_guard lock(mutex_);
  return current_.expires_at_s;
}

bool ServerTls::reload() {
  try {
    Loaded loaded = load();
    spdlog::info("tls: reloaded {}; it expires at {} (epoch seconds)", certificate_path_,
                 loaded.expires_at_s);
    std::lock_guard lock(mutex_);
    current_ = std::move(loaded);
    return true;
  } catch (const std::runtime_error& error) {
    spdlog::error("tls: keeping the certificate in use: {}", error.what());
    return false;
  }
}

ServerTls::Loaded ServerTls::load() const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  context->set_options(ssl::context::default_workarounds | ssl::context::single_dh_use);
  boost::system::error_code error;
  context->use_certificate_chain_file(certificate_path_, error);
  if (error)
    throw std::runtime_error("server.tls_certificate " + certificate_path_ + ": " +
                             error.message());
  context->use_private_key_file(private_key_path_, ssl::context::pem, error);
  if (error || SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("server.tls_private_key " + private_key_path_ + ": " +
                             (error ? error.message() : "does not match the certificate"));
  std::tm expiry{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(SSL_CTX_get0_certificate(native)), &expiry) != 1)
    throw std::runtime_error("server.tls_certificate " + certificate_path_ +
                             ": its expiry cannot be read");
  return {std::move(context), static_cast<std::int64_t>(timegm(&expiry))};
}

}  // namespace flashsale::gateway
