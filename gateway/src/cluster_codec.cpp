// See cluster_codec.hpp, which has the wire format. Each stream's field names are one table
// here, used by its encoders and its decoder alike, so a name cannot mean two things.
#include "cluster_codec.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <concepts>
#include <type_traits>

#include "cluster.hpp"
#include "flashsale/engine/bytes.hpp"
#include "flashsale/engine/types.hpp"

namespace flashsale::gateway::cluster {

namespace {

// The last FrameKind (outbox.hpp): a kind added there is refused here until added too.
constexpr auto frame_kind_max = static_cast<unsigned>(FrameKind::stream);
constexpr unsigned http_status_min = 100;
constexpr unsigned http_status_max = 599;

// Roughly what a record needs besides its text values: names, lengths and numbers.
constexpr std::size_t record_overhead = 96;

// Each stream's field names: an enumerator, and at the same place in `names` its name on the
// wire.
// clang-format off
namespace command_field {
enum : std::size_t {
  type, gateway, connection, drop, user, client_order_id, qty, tag, order_id, action,
  call, title, price_cents, stock, per_user_limit, hold_ms, waitlist_limit, admission_window_ms,
  beneficiary, beneficiary_note, pledge_bps, opens_in_ms, admission_seed, add,
  variant, variants, list_price_cents, per_variant_limit, duration_ms, opens_at_ms,
  stream, host, video_url, by, by_operator,
  count
};
constexpr std::array<std::string_view, count> names = {
  "t", "g", "c", "d", "u", "k", "q", "n", "i", "x",
  "call", "title", "price_cents", "stock", "per_user_limit", "hold_ms", "waitlist_limit",
  "admission_window_ms", "beneficiary", "beneficiary_note", "pledge_bps", "opens_in_ms",
  "admission_seed", "add",
  "v", "variants", "list_price_cents", "per_variant_limit", "duration_ms", "opens_at_ms",
  "stream", "host", "video_url", "by", "op"};
// The type of each host::Command alternative, in the variant's order.
constexpr const auto& host_types = host::command_names;
}  // namespace command_field

namespace answer_field {
enum : std::size_t {
  type, connection, kind, shard, drop_index, frame, tag, drop, code, call, status, body,
  count
};
constexpr std::array<std::string_view, count> names = {
  "t", "c", "k", "s", "i", "f", "n", "d", "code", "call", "status", "body"};
}  // namespace answer_field

// One variant of a create's "variants": each is a field "variant" holding a record of these.
namespace variant_field {
enum : std::size_t { id, label, price_cents, list_price_cents, stock, count };
constexpr std::array<std::string_view, count> names = {
  "id", "label", "price_cents", "list_price_cents", "stock"};
constexpr std::string_view item = "variant";
}  // namespace variant_field

namespace update_field {
enum : std::size_t { kind, drop_index, drop, frame, gate, limit, waitlist, buyers, variants, count };
constexpr std::array<std::string_view, count> names = {
  "k", "i", "d", "f", "g", "l", "w", "b", "v"};
}  // namespace update_field
// clang-format on

template <std::size_t count>
constexpr bool distinct(const std::array<std::string_view, count>& names) {
  for (std::size_t first = 0; first < count; ++first)
    for (std::size_t second = first + 1; second < count; ++second)
      if (names[first] == names[second]) return false;
  return true;
}
static_assert(distinct(command_field::names) && distinct(command_field::host_types));
static_assert(distinct(answer_field::names) && distinct(update_field::names));
static_assert(distinct(variant_field::names));

// Appends the fields of one record, named by a stream's table.
template <std::size_t count>
class Writer {
 public:
  Writer(std::string& record, const std::array<std::string_view, count>& names,
         std::size_t text_bytes)
      : record_(record), names_(names) {
    record_.reserve(record_.size() + record_overhead + text_bytes);
  }

  Writer& text(std::size_t field, std::string_view value) {
    append_field(record_, names_[field], value);
    return *this;
  }
  template <std::integral Number>
  Writer& number(std::size_t field, Number value) {
    char digits[24];
    const char* end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    return text(field, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  Writer& kind(std::size_t field, FrameKind value) {
    return number(field, static_cast<unsigned>(value));
  }

 private:
  std::string& record_;
  const std::array<std::string_view, count>& names_;
};

// Decimal digits only ('-' first for a signed type), the whole text, within the type's range.
template <std::integral Number>
bool parse_number(std::string_view text, Number& out) {
  std::string_view digits = text;
  if constexpr (std::is_signed_v<Number>) {
    if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  }
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), out);
  return problem == std::errc{} && end == text.data() + text.size();
}

// One record's fields, by their index in a stream's table. No allocation: views into the
// record.
template <std::size_t count>
class Reader {
  static_assert(count <= 64, "one bit per field");

 public:
  explicit Reader(const std::array<std::string_view, count>& names) : names_(names) {}

  // False if `record` is not a record, or gives a field of the table twice.
  bool read(std::string_view record) {
    Field field;
    while (!record.empty()) {
      if (!next_field(record, field)) return false;
      const auto known = std::find(names_.begin(), names_.end(), field.first);
      if (known == names_.end()) continue;  // a newer sender's: passed over
      const auto index = static_cast<std::size_t>(known - names_.begin());
      if ((present_ & bit(index)) != 0) return false;
      present_ |= bit(index);
      values_[index] = field.second;
    }
    return true;
  }

  // Each false if the field is missing or malformed.
  bool text(std::size_t field, std::string_view& out) const {
    if ((present_ & bit(field)) == 0) return false;
    out = values_[field];
    return true;
  }
  bool text(std::size_t field, std::string& out) const {
    std::string_view value;
    if (!text(field, value)) return false;
    out.assign(value);
    return true;
  }
  template <std::integral Number>
  bool number(std::size_t field, Number& out) const {
    std::string_view value;
    return text(field, value) && parse_number(value, out);
  }
  // Fields an older sender does not write: absent leaves `out` as it is; present, as above.
  bool has(std::size_t field) const { return (present_ & bit(field)) != 0; }
  template <std::integral Number>
  bool optional_number(std::size_t field, Number& out) const {
    return !has(field) || number(field, out);
  }
  template <std::integral Number>
  bool optional_number(std::size_t field, std::optional<Number>& out) const {
    if (!has(field)) return true;
    return number(field, out.emplace());
  }
  template <typename Text>
  bool optional_text(std::size_t field, Text& out) const {
    return !has(field) || text(field, out);
  }
  bool kind(std::size_t field, FrameKind& out) const {
    unsigned value = 0;
    if (!number(field, value) || value > frame_kind_max) return false;
    out = static_cast<FrameKind>(value);
    return true;
  }

 private:
  static constexpr std::uint64_t bit(std::size_t index) { return std::uint64_t{1} << index; }

  const std::array<std::string_view, count>& names_;
  std::array<std::string_view, count> values_{};
  std::uint64_t present_ = 0;
};

using CommandWriter = Writer<command_field::count>;
using CommandReader = Reader<command_field::count>;
using AnswerWriter = Writer<answer_field::count>;
using AnswerReader = Reader<answer_field::count>;

// Each host command's own fields, written and read.

std::size_t text_bytes(const host::Command& command) {
  return std::visit(
      []<typename Body>(const Body& body) -> std::size_t {
        if constexpr (std::is_same_v<Body, host::CreateDrop>) {
          std::size_t bytes = body.id.size() + body.title.size() + body.beneficiary.size() +
                              body.beneficiary_note.size() + 256;  // and its long names
          for (const host::Variant& variant : body.variants)
            bytes += variant.id.size() + variant.label.size() + 96;
          return bytes;
        } else if constexpr (std::is_same_v<Body, host::CreateStream>) {
          return body.id.size() + body.host.size() + body.title.size() + body.video_url.size() + 32;
        } else if constexpr (std::is_same_v<Body, host::Pin>) {
          return body.stream.size() + body.drop.size();
        } else if constexpr (std::is_same_v<Body, host::Restock>)
          return body.drop.size() + body.variant.size();
        else if constexpr (std::is_same_v<Body, host::ReadOrders>)
          return body.drop.size() + body.user.size();
        else if constexpr (requires { body.drop; })
          return body.drop.size();
        else if constexpr (requires { body.stream; })
          return body.stream.size();
        else
          return 0;
      },
      command);
}

// A create's variants, as the value of its field "variants".
std::string encode_variants(const std::vector<host::Variant>& list) {
  using namespace variant_field;
  std::string record;
  for (const host::Variant& variant : list) {
    std::string one;
    Writer<count>(one, names, variant.id.size() + variant.label.size())
        .text(id, variant.id)
        .text(label, variant.label)
        .number(price_cents, variant.price_cents)
        .number(list_price_cents, variant.list_price_cents)
        .number(stock, variant.stock);
    append_field(record, item, one);
  }
  return record;
}
// At most engine::variants_max of them: a list can be no longer than a drop's.
bool decode_variants(std::string_view record, std::vector<host::Variant>& list) {
  using namespace variant_field;
  Field field;
  while (!record.empty()) {
    if (!next_field(record, field) || field.first != item || list.size() == engine::variants_max)
      return false;
    Reader<count> in(names);
    host::Variant& variant = list.emplace_back();
    // Read as views, then copied: GCC 12 folds this reader's copying text() into the command
    // reader's and then warns about its own fold (-Warray-bounds).
    std::string_view id_text;
    std::string_view label_text;
    if (!in.read(field.second) || !in.text(id, id_text) || !in.text(label, label_text) ||
        !in.number(price_cents, variant.price_cents) ||
        !in.number(list_price_cents, variant.list_price_cents) || !in.number(stock, variant.stock))
      return false;
    variant.id = id_text;
    variant.label = label_text;
  }
  return true;
}

void write(CommandWriter& out, const host::CreateDrop& create) {
  using namespace command_field;
  out.text(drop, create.id)
      .text(title, create.title)
      .number(price_cents, create.price_cents)
      .number(stock, create.stock)
      .number(per_user_limit, create.per_user_limit)
      .number(hold_ms, create.hold_ms)
      .number(waitlist_limit, create.waitlist_limit)
      .number(admission_window_ms, create.admission_window_ms)
      .text(beneficiary, create.beneficiary)
      .text(beneficiary_note, create.beneficiary_note)
      .number(pledge_bps, create.pledge_bps)
      .number(list_price_cents, create.list_price_cents)
      .number(per_variant_limit, create.per_variant_limit)
      .number(duration_ms, create.duration_ms)
      .number(admission_seed, create.admission_seed);
  if (!create.variants.empty()) out.text(variants, encode_variants(create.variants));
  if (create.opens_at_ms) out.number(opens_at_ms, *create.opens_at_ms);
  if (!create.stream.empty()) out.text(stream, create.stream);
}
// The fields after pledge_bps are absent from a gateway older than variants: their defaults
// are protocol v1's drop.
bool read(const CommandReader& in, host::CreateDrop& create) {
  using namespace command_field;
  std::string_view listed;
  return in.text(drop, create.id) && in.text(title, create.title) &&
         in.number(price_cents, create.price_cents) && in.number(stock, create.stock) &&
         in.number(per_user_limit, create.per_user_limit) && in.number(hold_ms, create.hold_ms) &&
         in.number(waitlist_limit, create.waitlist_limit) &&
         in.number(admission_window_ms, create.admission_window_ms) &&
         in.text(beneficiary, create.beneficiary) &&
         in.text(beneficiary_note, create.beneficiary_note) &&
         in.number(pledge_bps, create.pledge_bps) &&
         in.optional_number(list_price_cents, create.list_price_cents) &&
         in.optional_number(per_variant_limit, create.per_variant_limit) &&
         in.optional_number(duration_ms, create.duration_ms) &&
         in.optional_number(admission_seed, create.admission_seed) &&
         in.optional_text(variants, listed) && decode_variants(listed, create.variants) &&
         in.optional_number(opens_at_ms, create.opens_at_ms) &&
         in.optional_text(stream, create.stream);
}

void write(CommandWriter& out, const host::CreateStream& create) {
  using namespace command_field;
  out.text(stream, create.id)
      .text(host, create.host)
      .text(title, create.title)
      .text(video_url, create.video_url);
}
bool read(const CommandReader& in, host::CreateStream& create) {
  using namespace command_field;
  return in.text(stream, create.id) && in.text(host, create.host) && in.text(title, create.title) &&
         in.text(video_url, create.video_url);
}

void write(CommandWriter& out, const host::StartCountdown& countdown) {
  using namespace command_field;
  out.text(drop, countdown.drop)
      .number(opens_in_ms, countdown.opens_in_ms)
      .number(admission_seed, countdown.admission_seed);
  if (countdown.opens_at_ms) out.number(opens_at_ms, *countdown.opens_at_ms);
}
bool read(const CommandReader& in, host::StartCountdown& countdown) {
  using namespace command_field;
  return in.text(drop, countdown.drop) && in.number(opens_in_ms, countdown.opens_in_ms) &&
         in.number(admission_seed, countdown.admission_seed) &&
         in.optional_number(opens_at_ms, countdown.opens_at_ms);
}

void write(CommandWriter& out, const host::Restock& restock) {
  using namespace command_field;
  out.text(drop, restock.drop).number(add, restock.add);
  if (!restock.variant.empty()) out.text(variant, restock.variant);
}
bool read(const CommandReader& in, host::Restock& restock) {
  using namespace command_field;
  return in.text(drop, restock.drop) && in.number(add, restock.add) &&
         in.optional_text(variant, restock.variant);
}

void write(CommandWriter& out, const host::ReadOrders& orders) {
  using namespace command_field;
  out.text(drop, orders.drop).text(user, orders.user);
}
bool read(const CommandReader& in, host::ReadOrders& orders) {
  using namespace command_field;
  return in.text(drop, orders.drop) && in.text(user, orders.user);
}

// The rest: their drop, their stream, both (a pin) or nothing (the lists).
template <typename Body>
void write(CommandWriter& out, const Body& body) {
  using namespace command_field;
  if constexpr (requires { body.drop; }) out.text(drop, body.drop);
  if constexpr (requires { body.stream; }) out.text(stream, body.stream);
}
template <typename Body>
bool read(const CommandReader& in, Body& body) {
  using namespace command_field;
  if constexpr (requires { body.drop; })
    if (!in.text(drop, body.drop)) return false;
  if constexpr (requires { body.stream; })
    if (!in.text(stream, body.stream)) return false;
  return true;
}

// Whom the call acts for (host::Caller): "by" a host, or "op" the operator. A call with
// neither comes from a gateway older than host accounts, whose one host key could do anything.
void write(CommandWriter& out, const host::Caller& caller) {
  using namespace command_field;
  if (caller.is_operator)
    out.number(by_operator, 1);
  else
    out.text(by, caller.host);
}
bool read(const CommandReader& in, host::Caller& caller) {
  using namespace command_field;
  std::uint32_t is_operator = 0;
  if (!in.optional_number(by_operator, is_operator) || is_operator > 1) return false;
  if (!in.has(by)) {
    caller = host::Caller::operator_();
    return true;
  }
  caller.is_operator = false;
  return is_operator == 0 && in.text(by, caller.host);
}

// The host::Command alternative number `which`, read into `out`.
template <std::size_t index = 0>
bool read_host(const CommandReader& in, std::size_t which, host::Command& out) {
  if constexpr (index < std::variant_size_v<host::Command>) {
    if (which != index) return read_host<index + 1>(in, which, out);
    std::variant_alternative_t<index, host::Command> body;
    if (!read(in, body)) return false;
    out.emplace<index>(std::move(body));
    return true;
  } else {
    return false;
  }
}

}  // namespace

void encode(const OrderCommand& order, std::string& record) {
  using namespace command_field;
  CommandWriter out(record, names,
                    order.gateway.size() + order.drop.size() + order.user.size() +
                        order.client_order_id.size() + order.variant.size());
  out.text(type, "o")
      .text(gateway, order.gateway)
      .number(connection, order.connection)
      .text(drop, order.drop)
      .text(user, order.user)
      .text(client_order_id, order.client_order_id)
      .number(qty, order.qty)
      .number(tag, order.tag);
  if (!order.variant.empty()) out.text(variant, order.variant);
}

void encode(const ActionCommand& action_command, std::string& record) {
  using namespace command_field;
  CommandWriter(
      record, names,
      action_command.gateway.size() + action_command.user.size() + action_command.order_id.size())
      .text(type, "a")
      .text(gateway, action_command.gateway)
      .number(connection, action_command.connection)
      .text(user, action_command.user)
      .text(order_id, action_command.order_id)
      .text(action, action_command.confirm ? "confirm" : "cancel");
}

void encode(const SubscribeCommand& subscribe, std::string& record) {
  using namespace command_field;
  CommandWriter(record, names,
                subscribe.gateway.size() + subscribe.drop.size() + subscribe.user.size())
      .text(type, "s")
      .text(gateway, subscribe.gateway)
      .number(connection, subscribe.connection)
      .text(drop, subscribe.drop)
      .text(user, subscribe.user);
}

void encode(const LeaveCommand& leave, std::string& record) {
  using namespace command_field;
  CommandWriter(record, names, leave.gateway.size() + leave.user.size())
      .text(type, "l")
      .text(gateway, leave.gateway)
      .number(connection, leave.connection)
      .text(user, leave.user);
}

void encode(const HostCommand& message, std::string& record) {
  using namespace command_field;
  CommandWriter out(
      record, names,
      message.gateway.size() + message.caller.host.size() + text_bytes(message.command));
  out.text(type, host_types[message.command.index()])
      .text(gateway, message.gateway)
      .number(call, message.call);
  std::visit([&](const auto& body) { write(out, body); }, message.command);
  write(out, message.caller);
}

void encode(const Command& command, std::string& record) {
  std::visit([&](const auto& body) { encode(body, record); }, command);
}

std::optional<Command> decode_command(std::string_view record) {
  using namespace command_field;
  CommandReader in(names);
  std::string_view kind;
  if (!in.read(record) || !in.text(type, kind)) return std::nullopt;
  if (kind == "o") {
    OrderCommand order;
    if (in.text(gateway, order.gateway) && in.number(connection, order.connection) &&
        in.text(drop, order.drop) && in.text(user, order.user) &&
        in.text(client_order_id, order.client_order_id) && in.number(qty, order.qty) &&
        in.number(tag, order.tag) && in.optional_text(variant, order.variant))
      return order;
  } else if (kind == "a") {
    ActionCommand action_command;
    std::string_view verb;
    if (in.text(gateway, action_command.gateway) &&
        in.number(connection, action_command.connection) && in.text(user, action_command.user) &&
        in.text(order_id, action_command.order_id) && in.text(action, verb) &&
        (verb == "confirm" || verb == "cancel")) {
      action_command.confirm = verb == "confirm";
      return action_command;
    }
  } else if (kind == "s") {
    SubscribeCommand subscribe;
    if (in.text(gateway, subscribe.gateway) && in.number(connection, subscribe.connection) &&
        in.text(drop, subscribe.drop)) {
      in.text(user, subscribe.user);  // optional: see SubscribeCommand
      return subscribe;
    }
  } else if (kind == "l") {
    LeaveCommand leave;
    if (in.text(gateway, leave.gateway) && in.number(connection, leave.connection) &&
        in.text(user, leave.user))
      return leave;
  } else if (const auto host_type = std::find(host_types.begin(), host_types.end(), kind);
             host_type != host_types.end()) {
    HostCommand message;
    if (in.text(gateway, message.gateway) && in.number(call, message.call) &&
        read(in, message.caller) &&
        read_host(in, static_cast<std::size_t>(host_type - host_types.begin()), message.command))
      return message;
  }
  return std::nullopt;
}

void encode(const FrameAnswer& message, std::string& record) {
  using namespace answer_field;
  AnswerWriter(record, names, message.frame.size())
      .text(type, "f")
      .number(connection, message.connection)
      .kind(kind, message.kind)
      .number(shard, message.shard)
      .number(drop_index, message.drop_index)
      .text(frame, message.frame);
}

void encode(const OrderAnswer& message, std::string& record) {
  using namespace answer_field;
  AnswerWriter(record, names, message.frame.size())
      .text(type, "o")
      .number(connection, message.connection)
      .kind(kind, message.kind)
      .number(tag, message.tag)
      .text(frame, message.frame);
}

void encode(const ForgetAnswer& message, std::string& record) {
  using namespace answer_field;
  AnswerWriter(record, names, message.drop.size())
      .text(type, "u")
      .number(connection, message.connection)
      .text(drop, message.drop);
}

void encode(const CloseAnswer& message, std::string& record) {
  using namespace answer_field;
  AnswerWriter(record, names, message.frame.size())
      .text(type, "x")
      .number(connection, message.connection)
      .number(code, message.code)
      .text(frame, message.frame);
}

void encode(const HostAnswer& message, std::string& record) {
  using namespace answer_field;
  AnswerWriter(record, names, message.reply.body.size())
      .text(type, "h")
      .number(call, message.call)
      .number(status, message.reply.status)
      .text(body, message.reply.body);
}

void encode(const Answer& answer, std::string& record) {
  std::visit([&](const auto& body) { encode(body, record); }, answer);
}

std::optional<Answer> decode_answer(std::string_view record) {
  using namespace answer_field;
  AnswerReader in(names);
  std::string_view what;
  if (!in.read(record) || !in.text(type, what)) return std::nullopt;
  if (what == "f") {
    FrameAnswer answer;
    if (in.number(connection, answer.connection) && in.kind(kind, answer.kind) &&
        in.number(shard, answer.shard) && in.number(drop_index, answer.drop_index) &&
        in.text(frame, answer.frame))
      return answer;
  } else if (what == "o") {
    OrderAnswer answer;
    if (in.number(connection, answer.connection) && in.kind(kind, answer.kind) &&
        in.number(tag, answer.tag) && in.text(frame, answer.frame))
      return answer;
  } else if (what == "u") {
    ForgetAnswer answer;
    if (in.number(connection, answer.connection) && in.text(drop, answer.drop)) return answer;
  } else if (what == "x") {
    CloseAnswer answer;
    if (in.number(connection, answer.connection) && in.number(code, answer.code) &&
        in.text(frame, answer.frame))
      return answer;
  } else if (what == "h") {
    HostAnswer answer;
    if (in.number(call, answer.call) && in.number(status, answer.reply.status) &&
        answer.reply.status >= http_status_min && answer.reply.status <= http_status_max &&
        in.text(body, answer.reply.body))
      return answer;
  }
  return std::nullopt;
}

std::string encode_update(const DropUpdate& update) {
  using namespace update_field;
  std::string message;
  Writer<count>(message, names, update.drop.size() + update.frame.size())
      .kind(kind, update.kind)
      .number(drop_index, update.drop_index)
      .text(drop, update.drop)
      .text(frame, update.frame);
  return message;
}

std::string encode_gate(const EdgeGate& gate) {
  using namespace update_field;
  std::string buyer_bytes;
  engine::ByteWriter bytes(buyer_bytes);
  for (const std::uint64_t buyer : gate.buyers) bytes.fixed64(buyer);
  std::string message;
  std::string ids;
  for (const std::string& id : gate.variants) {
    if (!ids.empty()) ids += ',';
    ids += id;
  }
  Writer<count> out(message, names, gate.drop.size() + buyer_bytes.size() + ids.size());
  out.number(update_field::gate, gate.sold_out ? 1 : 0)
      .text(drop, gate.drop)
      .number(limit, gate.per_user_limit)
      .number(waitlist, gate.waitlist_full ? 1 : 0)
      .text(buyers, buyer_bytes);
  if (!ids.empty()) out.text(variants, ids);
  return message;
}

namespace {

std::optional<Update> decode_gate(const Reader<update_field::count>& in) {
  using namespace update_field;
  EdgeGate decoded;
  unsigned sold_out = 0;
  unsigned waitlist_full = 0;
  std::string_view buyer_bytes;
  if (!in.number(gate, sold_out) || sold_out > 1 || !in.text(drop, decoded.drop) ||
      !in.number(limit, decoded.per_user_limit) || !in.number(waitlist, waitlist_full) ||
      waitlist_full > 1 || !in.text(buyers, buyer_bytes) || buyer_bytes.size() % 8 != 0)
    return std::nullopt;
  decoded.waitlist_full = waitlist_full == 1;
  decoded.sold_out = sold_out == 1;
  std::string_view ids;
  if (in.text(variants, ids)) {
    for (std::size_t begin = 0; begin <= ids.size();) {
      const std::size_t end = std::min(ids.find(',', begin), ids.size());
      const std::string_view id = ids.substr(begin, end - begin);
      if (!engine::is_valid_variant_id(id) || decoded.variants.size() == engine::variants_max)
        return std::nullopt;
      decoded.variants.emplace_back(id);
      begin = end + 1;
    }
  }
  engine::ByteReader bytes(buyer_bytes);
  decoded.buyers.reserve(buyer_bytes.size() / 8);
  for (std::size_t index = 0; index < buyer_bytes.size() / 8; ++index)
    decoded.buyers.push_back(bytes.fixed64());
  if (!std::is_sorted(decoded.buyers.begin(), decoded.buyers.end())) return std::nullopt;
  return decoded;
}

}  // namespace

std::optional<Update> decode_update(std::string_view message) {
  using namespace update_field;
  if (message == heartbeat) return Heartbeat{};
  Reader<count> in(names);
  if (!in.read(message)) return std::nullopt;
  std::string_view present;
  if (in.text(gate, present)) return decode_gate(in);
  DropUpdate update;
  if (in.kind(kind, update.kind) && in.number(drop_index, update.drop_index) &&
      in.text(drop, update.drop) && in.text(frame, update.frame))
    return update;
  return std::nullopt;
}

}  // namespace flashsale::gateway::cluster
