// Enum <-> name tables: one constexpr list of pairs, read both ways.
//
//   constexpr auto kIntents = json::enum_table<Intent>({
//       {Intent::Creating, "creating"}, {Intent::Running, "running"}});
//   static_assert(kIntents.unique());
//   kIntents.to_string(Intent::Running)  -> "running"
//   kIntents.from_string("stopped")      -> nullopt
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace avm::json {

template <class E, std::size_t N>
class EnumTable {
 public:
  using Entry = std::pair<E, std::string_view>;

  constexpr explicit EnumTable(const Entry (&entries)[N]) {
    for (std::size_t i = 0; i < N; ++i) entries_[i] = entries[i];
  }

  // The name of `e`; `unknown` for a value the table does not list.
  constexpr std::string_view to_string(E e, std::string_view unknown = "unknown") const {
    for (const auto& [value, name] : entries_)
      if (value == e) return name;
    return unknown;
  }
  // The value named `name` (exact, case-sensitive); nullopt when none is.
  constexpr std::optional<E> from_string(std::string_view name) const {
    for (const auto& [value, n] : entries_)
      if (n == name) return value;
    return std::nullopt;
  }
  // No value and no name listed twice (for a static_assert beside the table).
  constexpr bool unique() const {
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t j = i + 1; j < N; ++j)
        if (entries_[i].first == entries_[j].first || entries_[i].second == entries_[j].second)
          return false;
    return true;
  }

  constexpr std::size_t size() const { return N; }
  constexpr auto begin() const { return entries_.begin(); }
  constexpr auto end() const { return entries_.end(); }

 private:
  std::array<Entry, N> entries_{};
};

// The value type is named, the size counted: enum_table<Intent>({{...}, ...}).
template <class E, std::size_t N>
constexpr EnumTable<E, N> enum_table(const std::pair<E, std::string_view> (&entries)[N]) {
  return EnumTable<E, N>(entries);
}

}  // namespace avm::json
