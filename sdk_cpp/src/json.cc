#include "tracim/plugin/json.h"

#include <boost/json/serialize.hpp>

namespace tracim::plugin {

boost::json::object ToJson(const User& user) {
  return boost::json::object{
      {"user_id", user.user_id()},       {"email", user.email()},
      {"username", user.username()},     {"public_name", user.public_name()},
      {"profile", user.profile()},       {"is_active", user.is_active()},
      {"is_deleted", user.is_deleted()}, {"lang", user.lang()},
      {"timezone", user.timezone()},
  };
}

boost::json::object ToJson(const Workspace& workspace) {
  return boost::json::object{
      {"workspace_id", workspace.workspace_id()},
      {"label", workspace.label()},
      {"description", workspace.description()},
      {"is_deleted", workspace.is_deleted()},
      {"access_type", workspace.access_type()},
      {"default_user_role", workspace.default_user_role()},
      {"parent_id", workspace.parent_id()},
      {"owner_id", workspace.owner_id()},
  };
}

boost::json::object ToJson(const Content& content) {
  boost::json::value author = nullptr;
  if (content.has_author()) author = ToJson(content.author());
  return boost::json::object{
      {"content_id", content.content_id()},
      {"label", content.label()},
      {"content_type", content.content_type()},
      {"raw_content", content.raw_content()},
      {"file_name", content.file_name()},
      {"file_extension", content.file_extension()},
      {"file_mimetype", content.file_mimetype()},
      {"status", content.status()},
      {"is_deleted", content.is_deleted()},
      {"is_archived", content.is_archived()},
      {"workspace_id", content.workspace_id()},
      {"parent_id", content.parent_id()},
      {"author", std::move(author)},
      {"revision_type", content.revision_type()},
  };
}

HttpResponse JsonResponse(int status, const boost::json::value& body) {
  return HttpResponse::Json(status, boost::json::serialize(body));
}

}  // namespace tracim::plugin
