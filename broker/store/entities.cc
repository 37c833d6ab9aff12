#include "broker/store/entities.h"

#include <array>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tracim::broker {
namespace {

// Tracim's names, indexed by the enum's value.
constexpr std::array<absl::string_view, 4> kProfileNames = {"nobody", "users", "trusted-users",
                                                            "administrators"};
constexpr std::array<absl::string_view, 4> kRoleNames = {"reader", "contributor", "content-manager",
                                                         "workspace-manager"};
constexpr std::array<absl::string_view, 3> kAccessTypeNames = {"confidential", "on_request",
                                                               "open"};
constexpr std::array<absl::string_view, 5> kContentTypeNames = {"folder", "file", "html-document",
                                                                "thread", "comment"};
constexpr std::array<absl::string_view, 4> kStatusNames = {
    "open", "closed-validated", "closed-unvalidated", "closed-deprecated"};
constexpr std::array<absl::string_view, 7> kRevisionTypeNames = {
    "creation", "edition", "deletion", "archiving", "unarchiving", "status-update", "move"};

template <typename Enum, size_t N>
absl::StatusOr<Enum> ParseByName(const std::array<absl::string_view, N>& names,
                                 absl::string_view what, absl::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  // "a, b or c"
  std::string expected = absl::StrJoin(names.begin(), names.end() - 1, ", ");
  absl::StrAppend(&expected, " or ", names[N - 1]);
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", what, " \"", name, "\": expected ", expected));
}

}  // namespace

absl::string_view ToString(Profile value) { return kProfileNames[static_cast<size_t>(value)]; }
absl::string_view ToString(WorkspaceRole value) { return kRoleNames[static_cast<size_t>(value)]; }
absl::string_view ToString(AccessType value) {
  return kAccessTypeNames[static_cast<size_t>(value)];
}
absl::string_view ToString(ContentType value) {
  return kContentTypeNames[static_cast<size_t>(value)];
}
absl::string_view ToString(ContentStatus value) { return kStatusNames[static_cast<size_t>(value)]; }
absl::string_view ToString(RevisionType value) {
  return kRevisionTypeNames[static_cast<size_t>(value)];
}

absl::StatusOr<Profile> ParseProfile(absl::string_view name) {
  return ParseByName<Profile>(kProfileNames, "profile", name);
}
absl::StatusOr<WorkspaceRole> ParseWorkspaceRole(absl::string_view name) {
  return ParseByName<WorkspaceRole>(kRoleNames, "role", name);
}
absl::StatusOr<AccessType> ParseAccessType(absl::string_view name) {
  return ParseByName<AccessType>(kAccessTypeNames, "access_type", name);
}
absl::StatusOr<ContentType> ParseContentType(absl::string_view name) {
  return ParseByName<ContentType>(kContentTypeNames, "content_type", name);
}
absl::StatusOr<ContentStatus> ParseContentStatus(absl::string_view name) {
  return ParseByName<ContentStatus>(kStatusNames, "status", name);
}
absl::StatusOr<RevisionType> ParseRevisionType(absl::string_view name) {
  return ParseByName<RevisionType>(kRevisionTypeNames, "revision_type", name);
}

}  // namespace tracim::broker
