// Tests for the entities' enum names: tracim's spelling both ways, ordering
// by privilege, and the exact error for an unknown name.
#include "absl/status/status.h"
#include "broker/store/entities.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

template <typename Enum, typename Parse>
void ExpectRoundTrip(Enum value, absl::string_view name, Parse parse) {
  EXPECT_EQ(ToString(value), name);
  auto parsed = parse(name);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, value);
}

TEST(StoreEntities, NamesAreTracimsBothWays) {
  ExpectRoundTrip(Profile::kNobody, "nobody", ParseProfile);
  ExpectRoundTrip(Profile::kUsers, "users", ParseProfile);
  ExpectRoundTrip(Profile::kTrustedUsers, "trusted-users", ParseProfile);
  ExpectRoundTrip(Profile::kAdministrators, "administrators", ParseProfile);
  ExpectRoundTrip(WorkspaceRole::kReader, "reader", ParseWorkspaceRole);
  ExpectRoundTrip(WorkspaceRole::kContributor, "contributor", ParseWorkspaceRole);
  ExpectRoundTrip(WorkspaceRole::kContentManager, "content-manager", ParseWorkspaceRole);
  ExpectRoundTrip(WorkspaceRole::kWorkspaceManager, "workspace-manager", ParseWorkspaceRole);
  ExpectRoundTrip(AccessType::kConfidential, "confidential", ParseAccessType);
  ExpectRoundTrip(AccessType::kOnRequest, "on_request", ParseAccessType);
  ExpectRoundTrip(AccessType::kOpen, "open", ParseAccessType);
  ExpectRoundTrip(ContentType::kFolder, "folder", ParseContentType);
  ExpectRoundTrip(ContentType::kFile, "file", ParseContentType);
  ExpectRoundTrip(ContentType::kHtmlDocument, "html-document", ParseContentType);
  ExpectRoundTrip(ContentType::kThread, "thread", ParseContentType);
  ExpectRoundTrip(ContentType::kComment, "comment", ParseContentType);
  ExpectRoundTrip(ContentStatus::kOpen, "open", ParseContentStatus);
  ExpectRoundTrip(ContentStatus::kClosedValidated, "closed-validated", ParseContentStatus);
  ExpectRoundTrip(ContentStatus::kClosedUnvalidated, "closed-unvalidated", ParseContentStatus);
  ExpectRoundTrip(ContentStatus::kClosedDeprecated, "closed-deprecated", ParseContentStatus);
  ExpectRoundTrip(RevisionType::kCreation, "creation", ParseRevisionType);
  ExpectRoundTrip(RevisionType::kEdition, "edition", ParseRevisionType);
  ExpectRoundTrip(RevisionType::kDeletion, "deletion", ParseRevisionType);
  ExpectRoundTrip(RevisionType::kArchiving, "archiving", ParseRevisionType);
  ExpectRoundTrip(RevisionType::kUnarchiving, "unarchiving", ParseRevisionType);
  ExpectRoundTrip(RevisionType::kStatusUpdate, "status-update", ParseRevisionType);
  ExpectRoundTrip(RevisionType::kMove, "move", ParseRevisionType);
}

TEST(StoreEntities, ProfilesAndRolesAreOrderedByPrivilege) {
  EXPECT_LT(Profile::kNobody, Profile::kUsers);
  EXPECT_LT(Profile::kUsers, Profile::kTrustedUsers);
  EXPECT_LT(Profile::kTrustedUsers, Profile::kAdministrators);
  EXPECT_LT(WorkspaceRole::kReader, WorkspaceRole::kContributor);
  EXPECT_LT(WorkspaceRole::kContributor, WorkspaceRole::kContentManager);
  EXPECT_LT(WorkspaceRole::kContentManager, WorkspaceRole::kWorkspaceManager);
}

TEST(StoreEntities, UnknownNameIsInvalidArgumentListingTheAcceptedOnes) {
  EXPECT_EQ(ParseProfile("root").status(),
            absl::InvalidArgumentError(
                "invalid profile \"root\": expected nobody, users, trusted-users or "
                "administrators"));
  EXPECT_EQ(ParseWorkspaceRole("Reader").status(),
            absl::InvalidArgumentError("invalid role \"Reader\": expected reader, contributor, "
                                       "content-manager or workspace-manager"));
  EXPECT_EQ(ParseAccessType("").status(),
            absl::InvalidArgumentError(
                "invalid access_type \"\": expected confidential, on_request or open"));
  EXPECT_EQ(ParseContentType("kanban").status(),
            absl::InvalidArgumentError("invalid content_type \"kanban\": expected folder, file, "
                                       "html-document, thread or comment"));
  EXPECT_EQ(ParseContentStatus("closed").status(),
            absl::InvalidArgumentError("invalid status \"closed\": expected open, "
                                       "closed-validated, closed-unvalidated or "
                                       "closed-deprecated"));
  EXPECT_EQ(ParseRevisionType("copy").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tracim::broker
