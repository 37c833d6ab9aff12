#include "broker/backend/rest_api.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "boost/asio/post.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "broker/backend/api_error.h"
#include "broker/backend/authenticator.h"
#include "broker/backend/entity_json.h"
#include "broker/backend/hook_events.h"
#include "broker/common/status_macros.h"
#include "broker/http/url_decoding.h"

namespace tracim::broker {
namespace {

namespace pb = tracim::plugin::v1;

constexpr absl::string_view kApiPrefix = "/api/";

enum class Endpoint {
  kWhoami,
  kUsers,
  kUser,
  kWorkspaces,
  kWorkspace,
  kMembers,
  kMember,
  kContents,
  kContent,
  kComments,
};

// "#" stands for a numeric id segment.
struct RoutePattern {
  std::vector<absl::string_view> segments;
  Endpoint endpoint;
  std::vector<absl::string_view> methods;
};

const std::vector<RoutePattern>& Routes() {
  static const auto* routes = new std::vector<RoutePattern>{
      {{"auth", "whoami"}, Endpoint::kWhoami, {"GET"}},
      {{"users"}, Endpoint::kUsers, {"GET", "POST"}},
      {{"users", "#"}, Endpoint::kUser, {"GET", "PUT", "DELETE"}},
      {{"workspaces"}, Endpoint::kWorkspaces, {"GET", "POST"}},
      {{"workspaces", "#"}, Endpoint::kWorkspace, {"GET", "PUT", "DELETE"}},
      {{"workspaces", "#", "members"}, Endpoint::kMembers, {"GET", "POST"}},
      {{"workspaces", "#", "members", "#"}, Endpoint::kMember, {"GET", "PUT", "DELETE"}},
      {{"workspaces", "#", "contents"}, Endpoint::kContents, {"GET", "POST"}},
      {{"workspaces", "#", "contents", "#"}, Endpoint::kContent, {"GET", "PUT", "DELETE"}},
      {{"workspaces", "#", "contents", "#", "comments"}, Endpoint::kComments, {"GET", "POST"}},
  };
  return *routes;
}

struct RouteMatch {
  const RoutePattern* route = nullptr;
  // The path's ids in order: {workspace_id, user_id or content_id}, or {user_id}.
  std::array<int64_t, 2> ids = {0, 0};
};

bool ParseIdSegment(absl::string_view segment, int64_t* id) {
  if (segment.empty() || segment.size() > 18) return false;  // 18 digits never overflow
  for (char c : segment) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(segment, id);
}

std::optional<RouteMatch> MatchRoute(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, kApiPrefix)) return std::nullopt;
  absl::ConsumeSuffix(&path, "/");  // "/api/users/" is "/api/users"
  std::vector<std::string> segments;
  for (absl::string_view raw : absl::StrSplit(path, '/')) {
    absl::StatusOr<std::string> decoded = PercentDecode(raw);
    if (!decoded.ok()) return std::nullopt;
    segments.push_back(*std::move(decoded));
  }
  for (const RoutePattern& route : Routes()) {
    if (route.segments.size() != segments.size()) continue;
    RouteMatch match{.route = &route};
    size_t next_id = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < segments.size(); ++i) {
      if (route.segments[i] == "#") {
        ok = ParseIdSegment(segments[i], &match.ids[next_id++]);
      } else {
        ok = route.segments[i] == segments[i];
      }
    }
    if (ok) return match;
  }
  return std::nullopt;
}

HttpResponse JsonResponse(int status, boost::json::value body) {
  return HttpResponse{status, {{"Content-Type", "application/json"}}, boost::json::serialize(body)};
}

HttpResponse Ok(boost::json::value body) { return JsonResponse(200, std::move(body)); }

HttpResponse NoContent() { return HttpResponse{204, {}, ""}; }

absl::Status Forbidden(absl::string_view message) { return absl::PermissionDeniedError(message); }

// Applies a parser (ParseProfile, ...) to an optional string field.
template <typename T>
absl::StatusOr<std::optional<T>> ParseOptional(
    const absl::StatusOr<std::optional<std::string>>& field,
    absl::StatusOr<T> (*parse)(absl::string_view)) {
  if (!field.ok()) return field.status();
  if (!field->has_value()) return std::optional<T>();
  ASSIGN_OR_RETURN(T value, parse(**field));
  return std::optional<T>(value);
}

}  // namespace

// One request, after routing, on the blocking executor: authenticates,
// checks permissions, calls the store and publishes the hooks.
class RestApi::Exchange {
 public:
  Exchange(RestApi& api, const HttpRequest& request, const RouteMatch& match)
      : api_(api), store_(api.store_), request_(request), match_(match) {}

  HttpResponse Run() {
    absl::StatusOr<HttpResponse> response = Dispatch();
    if (!response.ok()) return ErrorResponse(response.status());
    return *std::move(response);
  }

 private:
  absl::StatusOr<HttpResponse> Dispatch() {
    ASSIGN_OR_RETURN(me_, Authenticate());
    const std::string& method = request_.head.method;
    const int64_t id0 = match_.ids[0];
    const int64_t id1 = match_.ids[1];
    switch (match_.route->endpoint) {
      case Endpoint::kWhoami:
        return Ok(UserJson(me_));
      case Endpoint::kUsers:
        return method == "POST" ? CreateUser() : ListUsers();
      case Endpoint::kUser:
        if (method == "GET") return GetUser(id0);
        return method == "PUT" ? UpdateUser(id0) : DeleteUser(id0);
      case Endpoint::kWorkspaces:
        return method == "POST" ? CreateWorkspace() : ListWorkspaces();
      case Endpoint::kWorkspace:
        if (method == "GET") return GetWorkspace(id0);
        return method == "PUT" ? UpdateWorkspace(id0) : DeleteWorkspace(id0);
      case Endpoint::kMembers:
        return method == "POST" ? AddMember(id0) : ListMembers(id0);
      case Endpoint::kMember:
        if (method == "GET") return GetMember(id0, id1);
        return method == "PUT" ? UpdateMember(id0, id1) : RemoveMember(id0, id1);
      case Endpoint::kContents:
        return method == "POST" ? CreateContent(id0) : ListContents(id0);
      case Endpoint::kContent:
        if (method == "GET") return GetContent(id0, id1);
        return method == "PUT" ? UpdateContent(id0, id1) : DeleteContent(id0, id1);
      case Endpoint::kComments:
        return method == "POST" ? CreateComment(id0, id1) : ListComments(id0, id1);
    }
    return absl::InternalError("unhandled endpoint");
  }

  // --- Authentication and permissions -------------------------------------

  absl::StatusOr<User> Authenticate() { return AuthenticateRequest(store_, request_.head.headers); }

  bool IsAdmin() const { return me_.profile == Profile::kAdministrators; }

  // The workspace, if the caller may see it: a member (any role) or an
  // administrator. Sets role_ (administrators act as workspace-managers).
  absl::StatusOr<Workspace> AccessWorkspace(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, store_.GetWorkspace(workspace_id));
    if (IsAdmin()) {
      role_ = WorkspaceRole::kWorkspaceManager;
      return workspace;
    }
    absl::StatusOr<Membership> membership = store_.GetMembership(workspace_id, me_.user_id);
    if (absl::IsNotFound(membership.status())) {
      return Forbidden(absl::StrCat("you are not a member of workspace ", workspace_id));
    }
    if (!membership.ok()) return membership.status();
    role_ = membership->role;
    return workspace;
  }

  absl::Status RequireRole(const Workspace& workspace, WorkspaceRole minimum) const {
    if (role_ >= minimum) return absl::OkStatus();
    return Forbidden(absl::StrCat("this requires the ", ToString(minimum), " role in workspace ",
                                  workspace.workspace_id));
  }

  // A content of `workspace` (NOT_FOUND when it belongs to another one).
  absl::StatusOr<Content> ContentIn(const Workspace& workspace, int64_t content_id) {
    absl::StatusOr<Content> content = store_.GetContent(content_id);
    if (content.ok() && content->workspace_id != workspace.workspace_id) {
      return absl::NotFoundError(
          absl::StrCat("content ", content_id, " not found in workspace ", workspace.workspace_id));
    }
    return content;
  }

  // Contributors change their own contents; others' need content-manager.
  absl::Status RequireContentEditor(const Workspace& workspace, const Content& content) const {
    return RequireRole(workspace, content.author_id == me_.user_id
                                      ? WorkspaceRole::kContributor
                                      : WorkspaceRole::kContentManager);
  }

  absl::StatusOr<JsonBody> Body() const { return JsonBody::Parse(request_.body); }

  // --- Events (call with changes_.mutex() held, after the store call returned)

  void Publish(pb::Event event) { api_.changes_.Publish(std::move(event)); }

  pb::Event NewEvent(absl::string_view hook, std::optional<ContentType> subtype = std::nullopt) {
    return MakeEvent(hook, subtype, api_.options_.now(), me_);
  }

  void PublishUser(absl::string_view hook, const User& user) {
    pb::Event event = NewEvent(hook);
    *event.mutable_user() = ToProto(user);
    Publish(std::move(event));
  }

  void PublishWorkspace(absl::string_view hook, const Workspace& workspace) {
    pb::Event event = NewEvent(hook);
    *event.mutable_workspace() = ToProto(workspace);
    Publish(std::move(event));
  }

  void PublishMember(absl::string_view hook, const Membership& membership, const User& user,
                     const Workspace& workspace) {
    pb::Event event = NewEvent(hook);
    *event.mutable_member() = ToProto(membership, &user);
    *event.mutable_user() = ToProto(user);
    *event.mutable_workspace() = ToProto(workspace);
    Publish(std::move(event));
  }

  void PublishContent(absl::string_view hook, const Content& content, const Workspace& workspace) {
    pb::Event event = NewEvent(hook, content.content_type);
    std::optional<User> author;
    if (content.author_id == me_.user_id) {
      author = me_;
    } else if (absl::StatusOr<User> found = store_.GetUser(content.author_id); found.ok()) {
      author = *std::move(found);
    }
    *event.mutable_content() = ToProto(content, author.has_value() ? &*author : nullptr);
    *event.mutable_workspace() = ToProto(workspace);
    Publish(std::move(event));
  }

  // --- Users --------------------------------------------------------------

  absl::StatusOr<HttpResponse> CreateUser() {
    if (!IsAdmin()) return Forbidden("only administrators may create users");
    ASSIGN_OR_RETURN(JsonBody body, Body());
    NewUser user;
    ASSIGN_OR_RETURN(std::optional<std::string> email, body.String("email"));
    ASSIGN_OR_RETURN(std::optional<std::string> username, body.String("username"));
    ASSIGN_OR_RETURN(std::optional<std::string> public_name, body.String("public_name"));
    ASSIGN_OR_RETURN(std::optional<std::string> lang, body.String("lang"));
    ASSIGN_OR_RETURN(std::optional<std::string> timezone, body.String("timezone"));
    ASSIGN_OR_RETURN(user.password, body.String("password"));
    ASSIGN_OR_RETURN(std::optional<Profile> profile,
                     ParseOptional<Profile>(body.String("profile"), &ParseProfile));
    if (!email.has_value() && !username.has_value()) {
      return absl::InvalidArgumentError("missing field \"email\" or \"username\"");
    }
    if (user.password.has_value() && user.password->empty()) {
      return absl::InvalidArgumentError("field \"password\" must not be empty");
    }
    user.email = email.value_or("");
    user.username = username.value_or("");
    user.public_name = public_name.value_or("");
    user.lang = lang.value_or("");
    user.timezone = timezone.value_or("");
    user.profile = profile.value_or(Profile::kUsers);
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(User created, store_.CreateUser(user));
    PublishUser("on_user_created", created);
    return Ok(UserJson(created));
  }

  absl::StatusOr<HttpResponse> ListUsers() {
    if (!IsAdmin()) return Forbidden("only administrators may list users");
    ASSIGN_OR_RETURN(std::vector<User> users, store_.ListUsers(/*include_deleted=*/false));
    boost::json::array out;
    for (const User& user : users) out.push_back(UserJson(user));
    return Ok(std::move(out));
  }

  absl::Status RequireSelfOrAdmin(int64_t user_id) const {
    if (IsAdmin() || user_id == me_.user_id) return absl::OkStatus();
    return Forbidden("only administrators may access other users");
  }

  absl::StatusOr<HttpResponse> GetUser(int64_t user_id) {
    RETURN_IF_ERROR(RequireSelfOrAdmin(user_id));
    ASSIGN_OR_RETURN(User user, store_.GetUser(user_id));
    return Ok(UserJson(user));
  }

  absl::StatusOr<HttpResponse> UpdateUser(int64_t user_id) {
    RETURN_IF_ERROR(RequireSelfOrAdmin(user_id));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    UserUpdate update;
    ASSIGN_OR_RETURN(update.email, body.String("email"));
    ASSIGN_OR_RETURN(update.username, body.String("username"));
    ASSIGN_OR_RETURN(update.public_name, body.String("public_name"));
    ASSIGN_OR_RETURN(update.lang, body.String("lang"));
    ASSIGN_OR_RETURN(update.timezone, body.String("timezone"));
    ASSIGN_OR_RETURN(update.password, body.String("password"));
    ASSIGN_OR_RETURN(update.is_active, body.Bool("is_active"));
    ASSIGN_OR_RETURN(update.profile, ParseOptional<Profile>(body.String("profile"), &ParseProfile));
    if (update.password.has_value() && update.password->empty()) {
      return absl::InvalidArgumentError("field \"password\" must not be empty");
    }
    if (!IsAdmin() && (update.profile.has_value() || update.is_active.has_value())) {
      return Forbidden("only administrators may change profile or is_active");
    }
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(User before, store_.GetUser(user_id));
    ASSIGN_OR_RETURN(User updated, store_.UpdateUser(user_id, update));
    // A new password is a change the entity does not show.
    if (updated != before || update.password.has_value()) {
      PublishUser("on_user_modified", updated);
    }
    return Ok(UserJson(updated));
  }

  absl::StatusOr<HttpResponse> DeleteUser(int64_t user_id) {
    if (!IsAdmin()) return Forbidden("only administrators may delete users");
    if (user_id == me_.user_id) return Forbidden("administrators cannot delete themselves");
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(User deleted, store_.DeleteUser(user_id));
    PublishUser("on_user_deleted", deleted);
    return NoContent();
  }

  // --- Workspaces ---------------------------------------------------------

  absl::StatusOr<HttpResponse> CreateWorkspace() {
    if (me_.profile < Profile::kTrustedUsers) {
      return Forbidden("only trusted-users and administrators may create workspaces");
    }
    ASSIGN_OR_RETURN(JsonBody body, Body());
    NewWorkspace workspace;
    ASSIGN_OR_RETURN(workspace.label, body.RequiredString("label"));
    ASSIGN_OR_RETURN(std::optional<std::string> description, body.String("description"));
    ASSIGN_OR_RETURN(std::optional<AccessType> access_type,
                     ParseOptional<AccessType>(body.String("access_type"), &ParseAccessType));
    ASSIGN_OR_RETURN(
        std::optional<WorkspaceRole> default_role,
        ParseOptional<WorkspaceRole>(body.String("default_user_role"), &ParseWorkspaceRole));
    ASSIGN_OR_RETURN(std::optional<int64_t> parent_id, body.Id("parent_id"));
    workspace.description = description.value_or("");
    workspace.access_type = access_type.value_or(AccessType::kConfidential);
    workspace.default_user_role = default_role.value_or(WorkspaceRole::kReader);
    workspace.parent_id = parent_id.value_or(0);
    workspace.owner_id = me_.user_id;
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Workspace created, store_.CreateWorkspace(workspace));
    PublishWorkspace("on_workspace_created", created);
    // As tracim does, the creator manages the new workspace. Cannot fail but
    // for a database error (then the workspace stays, without members, and
    // the caller gets the error: administrators can still manage it).
    ASSIGN_OR_RETURN(Membership membership, store_.AddMembership(created.workspace_id, me_.user_id,
                                                                 WorkspaceRole::kWorkspaceManager));
    PublishMember("on_user_config_in_workspace_created", membership, me_, created);
    return Ok(WorkspaceJson(created));
  }

  absl::StatusOr<HttpResponse> ListWorkspaces() {
    ASSIGN_OR_RETURN(std::vector<Workspace> all, store_.ListWorkspaces(/*include_deleted=*/false));
    boost::json::array out;
    if (IsAdmin()) {
      for (const Workspace& workspace : all) out.push_back(WorkspaceJson(workspace));
      return Ok(std::move(out));
    }
    ASSIGN_OR_RETURN(std::vector<Membership> mine, store_.ListUserMemberships(me_.user_id));
    size_t m = 0;  // both are ordered by workspace_id
    for (const Workspace& workspace : all) {
      while (m < mine.size() && mine[m].workspace_id < workspace.workspace_id) ++m;
      if (m < mine.size() && mine[m].workspace_id == workspace.workspace_id) {
        out.push_back(WorkspaceJson(workspace));
      }
    }
    return Ok(std::move(out));
  }

  absl::StatusOr<HttpResponse> GetWorkspace(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    return Ok(WorkspaceJson(workspace));
  }

  absl::StatusOr<HttpResponse> UpdateWorkspace(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kWorkspaceManager));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    WorkspaceUpdate update;
    ASSIGN_OR_RETURN(update.label, body.String("label"));
    ASSIGN_OR_RETURN(update.description, body.String("description"));
    ASSIGN_OR_RETURN(update.access_type,
                     ParseOptional<AccessType>(body.String("access_type"), &ParseAccessType));
    ASSIGN_OR_RETURN(
        update.default_user_role,
        ParseOptional<WorkspaceRole>(body.String("default_user_role"), &ParseWorkspaceRole));
    ASSIGN_OR_RETURN(update.parent_id, body.Id("parent_id"));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Workspace before, store_.GetWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Workspace updated, store_.UpdateWorkspace(workspace_id, update));
    if (updated != before) PublishWorkspace("on_workspace_modified", updated);
    return Ok(WorkspaceJson(updated));
  }

  absl::StatusOr<HttpResponse> DeleteWorkspace(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kWorkspaceManager));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Workspace deleted, store_.DeleteWorkspace(workspace_id));
    PublishWorkspace("on_workspace_deleted", deleted);
    return NoContent();
  }

  // --- Members ------------------------------------------------------------

  absl::StatusOr<boost::json::object> MemberJsonWithUser(const Membership& membership) {
    ASSIGN_OR_RETURN(User user, store_.GetUser(membership.user_id));
    return MembershipJson(membership, &user);
  }

  absl::StatusOr<HttpResponse> ListMembers(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(std::vector<Membership> members, store_.ListWorkspaceMembers(workspace_id));
    boost::json::array out;
    for (const Membership& membership : members) {
      ASSIGN_OR_RETURN(boost::json::object json, MemberJsonWithUser(membership));
      out.push_back(std::move(json));
    }
    return Ok(std::move(out));
  }

  absl::StatusOr<HttpResponse> GetMember(int64_t workspace_id, int64_t user_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Membership membership, store_.GetMembership(workspace_id, user_id));
    ASSIGN_OR_RETURN(boost::json::object json, MemberJsonWithUser(membership));
    return Ok(std::move(json));
  }

  // The member named by a body: user_id, else user_email, else user_username.
  absl::StatusOr<User> MemberFromBody(const JsonBody& body) {
    ASSIGN_OR_RETURN(std::optional<int64_t> user_id, body.Id("user_id"));
    ASSIGN_OR_RETURN(std::optional<std::string> email, body.String("user_email"));
    ASSIGN_OR_RETURN(std::optional<std::string> username, body.String("user_username"));
    if (user_id.has_value() && *user_id > 0) return store_.GetUser(*user_id);
    if (email.has_value()) return store_.GetUserByEmail(*email);
    if (username.has_value()) return store_.GetUserByUsername(*username);
    return absl::InvalidArgumentError("missing field \"user_id\"");
  }

  absl::StatusOr<HttpResponse> AddMember(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kWorkspaceManager));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    ASSIGN_OR_RETURN(std::string role_name, body.RequiredString("role"));
    ASSIGN_OR_RETURN(WorkspaceRole role, ParseWorkspaceRole(role_name));
    ASSIGN_OR_RETURN(User user, MemberFromBody(body));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Membership membership, store_.AddMembership(workspace_id, user.user_id, role));
    PublishMember("on_user_config_in_workspace_created", membership, user, workspace);
    return Ok(MembershipJson(membership, &user));
  }

  absl::StatusOr<HttpResponse> UpdateMember(int64_t workspace_id, int64_t user_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kWorkspaceManager));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    ASSIGN_OR_RETURN(std::string role_name, body.RequiredString("role"));
    ASSIGN_OR_RETURN(WorkspaceRole role, ParseWorkspaceRole(role_name));
    ASSIGN_OR_RETURN(User user, store_.GetUser(user_id));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Membership before, store_.GetMembership(workspace_id, user_id));
    ASSIGN_OR_RETURN(Membership membership, store_.UpdateMembership(workspace_id, user_id, role));
    if (membership != before) {
      PublishMember("on_user_config_in_workspace_modified", membership, user, workspace);
    }
    return Ok(MembershipJson(membership, &user));
  }

  // Workspace-managers remove anyone; every member may leave.
  absl::StatusOr<HttpResponse> RemoveMember(int64_t workspace_id, int64_t user_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    if (user_id != me_.user_id) {
      RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kWorkspaceManager));
    }
    ASSIGN_OR_RETURN(User user, store_.GetUser(user_id));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Membership membership, store_.RemoveMembership(workspace_id, user_id));
    PublishMember("on_user_config_in_workspace_deleted", membership, user, workspace);
    return NoContent();
  }

  // --- Contents -----------------------------------------------------------

  absl::StatusOr<ContentFilter> FilterFromQuery() const {
    ContentFilter filter;
    ASSIGN_OR_RETURN(auto params, ParseQuery(request_.head.query));
    for (const auto& [name, value] : params) {
      if (name == "parent_id") {
        int64_t id = 0;
        if (!ParseIdSegment(value, &id)) {
          return absl::InvalidArgumentError(
              "query parameter \"parent_id\" must be a non-negative integer");
        }
        filter.parent_id = id;
      } else if (name == "content_type") {
        for (absl::string_view type : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          ASSIGN_OR_RETURN(ContentType parsed, ParseContentType(type));
          filter.content_types.push_back(parsed);
        }
      }
    }
    return filter;
  }

  absl::StatusOr<HttpResponse> ContentList(int64_t workspace_id, const ContentFilter& filter) {
    ASSIGN_OR_RETURN(std::vector<Content> contents, store_.ListContents(workspace_id, filter));
    boost::json::array out;
    for (const Content& content : contents) out.push_back(ContentJson(content));
    return Ok(std::move(out));
  }

  absl::StatusOr<HttpResponse> ListContents(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(ContentFilter filter, FilterFromQuery());
    return ContentList(workspace_id, filter);
  }

  absl::StatusOr<HttpResponse> CreateContent(int64_t workspace_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kContributor));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    NewContent content;
    ASSIGN_OR_RETURN(std::string type_name, body.RequiredString("content_type"));
    ASSIGN_OR_RETURN(content.content_type, ParseContentType(type_name));
    if (content.content_type == ContentType::kComment) {
      return absl::InvalidArgumentError(
          "comments are created with POST /api/workspaces/{workspace_id}/contents/"
          "{content_id}/comments");
    }
    ASSIGN_OR_RETURN(std::optional<std::string> label, body.String("label"));
    ASSIGN_OR_RETURN(std::optional<std::string> raw_content, body.String("raw_content"));
    ASSIGN_OR_RETURN(std::optional<std::string> file_name, body.String("file_name"));
    ASSIGN_OR_RETURN(std::optional<std::string> file_mimetype, body.String("file_mimetype"));
    ASSIGN_OR_RETURN(std::optional<int64_t> parent_id, body.Id("parent_id"));
    ASSIGN_OR_RETURN(std::optional<ContentStatus> status,
                     ParseOptional<ContentStatus>(body.String("status"), &ParseContentStatus));
    content.workspace_id = workspace_id;
    content.parent_id = parent_id.value_or(0);
    content.label = label.value_or("");
    content.raw_content = raw_content.value_or("");
    content.file_name = file_name.value_or("");
    content.file_mimetype = file_mimetype.value_or("");
    content.status = status.value_or(ContentStatus::kOpen);
    content.author_id = me_.user_id;
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Content created, store_.CreateContent(content));
    PublishContent("on_content_created", created, workspace);
    return Ok(ContentJson(created));
  }

  absl::StatusOr<HttpResponse> GetContent(int64_t workspace_id, int64_t content_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Content content, ContentIn(workspace, content_id));
    return Ok(ContentJson(content));
  }

  absl::StatusOr<HttpResponse> UpdateContent(int64_t workspace_id, int64_t content_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Content content, ContentIn(workspace, content_id));
    RETURN_IF_ERROR(RequireContentEditor(workspace, content));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    ContentUpdate update;
    ASSIGN_OR_RETURN(update.label, body.String("label"));
    ASSIGN_OR_RETURN(update.raw_content, body.String("raw_content"));
    ASSIGN_OR_RETURN(update.file_name, body.String("file_name"));
    ASSIGN_OR_RETURN(update.file_mimetype, body.String("file_mimetype"));
    ASSIGN_OR_RETURN(update.is_archived, body.Bool("is_archived"));
    ASSIGN_OR_RETURN(update.parent_id, body.Id("parent_id"));
    ASSIGN_OR_RETURN(update.status,
                     ParseOptional<ContentStatus>(body.String("status"), &ParseContentStatus));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Content updated, store_.UpdateContent(content_id, update));
    PublishContent("on_content_modified", updated, workspace);
    return Ok(ContentJson(updated));
  }

  absl::StatusOr<HttpResponse> DeleteContent(int64_t workspace_id, int64_t content_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Content content, ContentIn(workspace, content_id));
    RETURN_IF_ERROR(RequireContentEditor(workspace, content));
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Content deleted, store_.DeleteContent(content_id));
    PublishContent("on_content_deleted", deleted, workspace);
    return NoContent();
  }

  // --- Comments -----------------------------------------------------------

  absl::StatusOr<HttpResponse> ListComments(int64_t workspace_id, int64_t content_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Content content, ContentIn(workspace, content_id));
    ContentFilter filter;
    filter.parent_id = content_id;
    filter.content_types = {ContentType::kComment};
    return ContentList(workspace_id, filter);
  }

  absl::StatusOr<HttpResponse> CreateComment(int64_t workspace_id, int64_t content_id) {
    ASSIGN_OR_RETURN(Workspace workspace, AccessWorkspace(workspace_id));
    ASSIGN_OR_RETURN(Content parent, ContentIn(workspace, content_id));
    RETURN_IF_ERROR(RequireRole(workspace, WorkspaceRole::kContributor));
    ASSIGN_OR_RETURN(JsonBody body, Body());
    NewContent comment;
    ASSIGN_OR_RETURN(comment.raw_content, body.RequiredString("raw_content"));
    comment.workspace_id = workspace_id;
    comment.parent_id = parent.content_id;
    comment.content_type = ContentType::kComment;
    comment.author_id = me_.user_id;
    absl::MutexLock lock(&api_.changes_.mutex());
    ASSIGN_OR_RETURN(Content created, store_.CreateContent(comment));
    PublishContent("on_content_created", created, workspace);
    return Ok(ContentJson(created));
  }

  RestApi& api_;
  Store& store_;
  const HttpRequest& request_;
  const RouteMatch& match_;
  User me_;
  // The caller's role in the workspace last checked by AccessWorkspace.
  WorkspaceRole role_ = WorkspaceRole::kReader;
};

RestApi::RestApi(Store& store, EventPublisher publish,
                 boost::asio::any_io_executor blocking_executor, RestApiOptions options)
    : store_(store),
      own_changes_(std::make_unique<ChangePublisher>(std::move(publish))),
      changes_(*own_changes_),
      blocking_executor_(std::move(blocking_executor)),
      options_(std::move(options)) {}

RestApi::RestApi(Store& store, ChangePublisher& changes,
                 boost::asio::any_io_executor blocking_executor, RestApiOptions options)
    : store_(store),
      changes_(changes),
      blocking_executor_(std::move(blocking_executor)),
      options_(std::move(options)) {}

absl::Status RestApi::Register(HttpRouter& router) {
  return router.AddPrefix(std::string(kApiPrefix),
                          HttpHandler::Simple([this](HttpRequest request, HttpResponder respond) {
                            Handle(std::move(request), std::move(respond));
                          }));
}

void RestApi::Handle(HttpRequest request, HttpResponder respond) {
  // Routing is cheap and pure: answer 404 / 405 on the caller's thread.
  std::optional<RouteMatch> match = MatchRoute(request.head.path);
  if (!match.has_value()) {
    respond(
        JsonErrorResponse(404, "not_found", absl::StrCat("no endpoint at ", request.head.path)));
    return;
  }
  const std::vector<absl::string_view>& methods = match->route->methods;
  if (std::find(methods.begin(), methods.end(), request.head.method) == methods.end()) {
    HttpResponse response = JsonErrorResponse(
        405, "method_not_allowed",
        absl::StrCat("method ", request.head.method, " is not allowed on ", request.head.path));
    response.headers.Set("Allow", absl::StrJoin(methods, ", "));
    respond(std::move(response));
    return;
  }
  boost::asio::post(blocking_executor_, [this, request = std::move(request),
                                         respond = std::move(respond), match = *match]() {
    HttpResponse response;
    try {
      response = Exchange(*this, request, match).Run();
    } catch (const std::exception& e) {
      response = ErrorResponse(absl::InternalError(e.what()));
    } catch (...) {
      response = ErrorResponse(absl::InternalError("unknown exception"));
    }
    respond(std::move(response));
  });
}

}  // namespace tracim::broker
