#include "broker/http/http_response.h"

#include "boost/json/object.hpp"
#include "boost/json/serialize.hpp"

namespace tracim::broker {

std::string JsonErrorBody(absl::string_view code, absl::string_view message) {
  // boost::json::object keeps insertion order: "code" then "message".
  boost::json::object body;
  body["code"] = boost::json::string_view(code.data(), code.size());
  body["message"] = boost::json::string_view(message.data(), message.size());
  return boost::json::serialize(body);
}

HttpResponse JsonErrorResponse(int status, absl::string_view code, absl::string_view message) {
  HttpResponse response;
  response.status = status;
  response.headers.Add("Content-Type", "application/json");
  response.body = JsonErrorBody(code, message);
  return response;
}

}  // namespace tracim::broker
