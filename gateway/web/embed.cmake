# Build step: turns the pages in WEB_DIR (the files named in WEB_FILES, separated by "|") into
# OUTPUT, a C++ source that defines flashsale::gateway::web_assets() — each file's bytes,
# content type and ETag (the start of its SHA-256) — so the `flashsale` binary serves its pages
# without finding files at run time.
string(REPLACE "|" ";" files "${WEB_FILES}")
set(arrays "")
set(entries "")
set(index 0)
foreach(name IN LISTS files)
  file(READ "${WEB_DIR}/${name}" hex HEX)
  file(SHA256 "${WEB_DIR}/${name}" digest)
  string(SUBSTRING "${digest}" 0 20 etag)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  get_filename_component(extension "${name}" LAST_EXT)
  if(extension STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(extension STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(extension STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(extension STREQUAL ".svg")
    set(type "image/svg+xml")
  elseif(extension STREQUAL ".png")
    set(type "image/png")
  else()
    message(FATAL_ERROR "embed.cmake: no content type for ${name}")
  endif()
  string(APPEND arrays "constexpr unsigned char asset_${index}[] = {${bytes}};\n")
  string(APPEND entries
    "    {\"/${name}\", \"${type}\", \"\\\"${etag}\\\"\", as_text(asset_${index})},\n")
  math(EXPR index "${index} + 1")
endforeach()
file(WRITE "${OUTPUT}"
"// Generated from gateway/web/ by gateway/web/embed.cmake: do not edit.
#include \"web_assets.hpp\"

namespace flashsale::gateway {

namespace {

${arrays}
template <std::size_t size>
std::string_view as_text(const unsigned char (&bytes)[size]) {
  return {reinterpret_cast<const char*>(bytes), size};
}

}  // namespace

std::span<const WebAsset> web_assets() {
  static const WebAsset assets[] = {
${entries}  };
  return assets;
}

}  // namespace flashsale::gateway
")
