#include "qmp/events.h"

#include "qmp/errors.h"

namespace avm::qmp {

namespace json = boost::json;

Event parse_event(const json::object& message) {
  auto m = fields(message, "event");
  Event e;
  e.name = m.str("event");
  auto ts = fields(m.value("timestamp"), "event " + e.name + " timestamp");
  e.ts_seconds = ts.int64("seconds");
  e.ts_micros = ts.int64("microseconds");
  if (auto data = m.opt_obj("data")) e.data = data->object();
  return e;
}

const Event& EventBuffer::push(Event e) {
  e.seq = ++last_;
  events_.push_back(std::move(e));
  while (events_.size() > capacity_) {
    events_.pop_front();
    ++dropped_;
  }
  return events_.back();
}

std::optional<Event> EventBuffer::find(std::string_view name, EventCursor from,
                                       const EventPredicate& pred) const {
  for (const Event& e : events_) {
    if (e.seq <= from) continue;
    if (!name.empty() && e.name != name) continue;
    if (pred && !pred(e)) continue;
    return e;
  }
  return std::nullopt;
}

std::vector<Event> EventBuffer::since(EventCursor from) const {
  std::vector<Event> out;
  for (const Event& e : events_)
    if (e.seq > from) out.push_back(e);
  return out;
}

namespace {

void expect_name(const Event& e, std::string_view name) {
  if (e.name != name)
    throw ProtocolError("expected event " + std::string(name) + ", got " + e.name);
}

}  // namespace

ShutdownEvent ShutdownEvent::from(const Event& e) {
  expect_name(e, "SHUTDOWN");
  auto d = fields(e.data, "event SHUTDOWN data");
  return {d.boolean("guest"), d.str("reason")};
}

ResetEvent ResetEvent::from(const Event& e) {
  expect_name(e, "RESET");
  auto d = fields(e.data, "event RESET data");
  return {d.boolean("guest"), d.str("reason")};
}

StopEvent StopEvent::from(const Event& e) {
  expect_name(e, "STOP");
  return {};
}

ResumeEvent ResumeEvent::from(const Event& e) {
  expect_name(e, "RESUME");
  return {};
}

PowerdownEvent PowerdownEvent::from(const Event& e) {
  expect_name(e, "POWERDOWN");
  return {};
}

GuestPanickedEvent GuestPanickedEvent::from(const Event& e) {
  expect_name(e, "GUEST_PANICKED");
  auto d = fields(e.data, "event GUEST_PANICKED data");
  GuestPanickedEvent g;
  g.action = d.str("action");
  if (auto info = d.opt_obj("info")) g.info = info->object();
  return g;
}

DeviceDeletedEvent DeviceDeletedEvent::from(const Event& e) {
  expect_name(e, "DEVICE_DELETED");
  auto d = fields(e.data, "event DEVICE_DELETED data");
  return {d.opt_str("device"), d.str("path")};
}

json::object to_json(const Event& e) {
  json::object o;  // in QEMU's order
  o["timestamp"] = json::object{{"seconds", e.ts_seconds}, {"microseconds", e.ts_micros}};
  o["event"] = e.name;
  if (!e.data.empty()) o["data"] = e.data;
  o["seq"] = e.seq;
  return o;
}

}  // namespace avm::qmp
