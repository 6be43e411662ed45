// FS_ASSERT: the engine's check for programmer errors. It stays on in release builds, as
// TigerBeetle's and Redis's asserts do: an engine that has broken an invariant must stop
// before it acknowledges anything more, because every later outcome would be built on a lie.
// Business failures (sold out, over the limit, bad input) are never asserted: they are outcomes.
#pragma once

namespace flashsale::engine::detail {

[[noreturn]] void assert_failed(const char* expression, const char* file, int line) noexcept;

}  // namespace flashsale::engine::detail

#define FS_ASSERT(expression)                                                      \
  do {                                                                             \
    if (!(expression)) [[unlikely]]                                                \
      ::flashsale::engine::detail::assert_failed(#expression, __FILE__, __LINE__); \
  } while (false)

// Full scans (every order, every user) are too slow for every command of a release build; they
// run in debug and sanitizer builds, where FLASHSALE_FULL_CHECKS is defined.
#if defined(FLASHSALE_FULL_CHECKS)
#define FS_FULL_CHECKS_ENABLED 1
#else
#define FS_FULL_CHECKS_ENABLED 0
#endif
