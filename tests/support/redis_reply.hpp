// A hiredis reply as text, for tests that compare what Redis answered: strings, statuses and
// errors as they are, integers in decimal, arrays joined by ' ' (nested ones too).
#pragma once

#include <hiredis/hiredis.h>

#include <string>

namespace flashsale::testing {

inline std::string reply_text(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply->integer);
    case REDIS_REPLY_ARRAY: {
      std::string joined;
      for (std::size_t index = 0; index < reply->elements; ++index)
        joined += (index ? " " : "") + reply_text(reply->element[index]);
      return joined;
    }
    default:
      return "";
  }
}

}  // namespace flashsale::testing
