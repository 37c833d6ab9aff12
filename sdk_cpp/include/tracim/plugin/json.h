// JSON helpers for route handlers, on Boost.JSON: tracim's entities as the
// objects tracim's REST API returns (same field names), and JSON responses.
// Pure functions: safe from any thread.
//
//   return tracim::plugin::JsonResponse(200, tracim::plugin::ToJson(*request.user));
#ifndef TRACIM_PLUGIN_JSON_H_
#define TRACIM_PLUGIN_JSON_H_

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "tracim/plugin/entities.h"
#include "tracim/plugin/http.h"

namespace tracim::plugin {

// {"user_id", "email", "username", "public_name", "profile", "is_active",
//  "is_deleted", "lang", "timezone"}.
boost::json::object ToJson(const User& user);
// {"workspace_id", "label", "description", "is_deleted", "access_type",
//  "default_user_role", "parent_id", "owner_id"}.
boost::json::object ToJson(const Workspace& workspace);
// {"content_id", "label", "content_type", "raw_content", "file_name",
//  "file_extension", "file_mimetype", "status", "is_deleted", "is_archived",
//  "workspace_id", "parent_id", "author" (a user object, or null),
//  "revision_type"}.
boost::json::object ToJson(const Content& content);

// `body` serialized, with Content-Type: application/json.
HttpResponse JsonResponse(int status, const boost::json::value& body);

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_JSON_H_
