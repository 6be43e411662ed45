// The viewer page and host console (gateway/web/), built into the binary by
// gateway/web/embed.cmake: serving them needs no files at run time, and a page always matches
// the server that serves it.
#pragma once

#include <span>
#include <string_view>

namespace flashsale::gateway {

struct WebAsset {
  std::string_view path;          // "/index.html", "/viewer.js", …
  std::string_view content_type;  // with charset for text
  std::string_view etag;          // quoted, from the content's SHA-256
  std::string_view body;
};

std::span<const WebAsset> web_assets();

// The asset for a request path: "/" is the viewer page, and so is "/s/STREAM" (a live stream's
// page: the page reads the stream from its own address), "/host" the console, "/web/NAME" any
// file, and the contracts (contracts/) are at /api/openapi.json and /api/asyncapi.json, beside
// the API they describe, with no key. nullptr when there is none.
inline const WebAsset* find_web_asset(std::string_view target) {
  constexpr std::string_view stream_page = "/s/";
  std::string_view path;
  if (target == "/" || (target.starts_with(stream_page) && target.size() > stream_page.size() &&
                        target.find('/', stream_page.size()) == std::string_view::npos)) {
    path = "/index.html";
  } else if (target == "/host") {
    path = "/host.html";
  } else if (target.starts_with("/web/") || target == "/api/openapi.json" ||
             target == "/api/asyncapi.json") {
    path = target.substr(4);
  } else {
    return nullptr;
  }
  for (const WebAsset& asset : web_assets())
    if (asset.path == path) return &asset;
  return nullptr;
}

}  // namespace flashsale::gateway
