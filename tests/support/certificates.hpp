// Self-signed certificates made on the spot with OpenSSL, for tests of the server's TLS: no
// key is ever checked in, and each test can have several to tell them apart.
#pragma once

#include <string>

struct ssl_st;  // OpenSSL's SSL

namespace flashsale::testing {

struct TestCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};

// An ECDSA P-256 key and a certificate for `common_name` (also its DNS name), valid for a day.
// Throws std::runtime_error if OpenSSL fails.
TestCertificate make_certificate(const std::string& common_name);

// The common name of the certificate the server showed on a client's TLS connection.
std::string peer_common_name(ssl_st* connection);

}  // namespace flashsale::testing
