#include "tracim/plugin/http.h"

#include <boost/json/serialize.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tracim/plugin/json.h"

namespace tracim::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(SdkHttpRequest, FindsHeadersCaseInsensitively) {
  HttpRequest request;
  request.headers = {{"Content-Type", "text/html"}, {"X-Thing", "1"}, {"x-thing", "2"}};
  EXPECT_EQ(request.Header("content-type"), "text/html");
  EXPECT_EQ(request.Header("X-THING"), "1");
  EXPECT_EQ(request.Header("Accept"), std::nullopt);
}

TEST(SdkHttpRequest, DecodesQueryParameters) {
  HttpRequest request;
  request.query = "a=1&name=J%C3%A9r%C3%B4me+D&empty=&flag&bad=%zz";
  EXPECT_EQ(request.QueryParam("a"), "1");
  EXPECT_EQ(request.QueryParam("name"), "J\xC3\xA9r\xC3\xB4me D");
  EXPECT_EQ(request.QueryParam("empty"), "");
  EXPECT_EQ(request.QueryParam("flag"), "");
  EXPECT_EQ(request.QueryParam("bad"), "%zz");
  EXPECT_EQ(request.QueryParam("missing"), std::nullopt);
}

TEST(SdkHttpResponse, SetHeaderReplacesEveryHeaderOfThatName) {
  HttpResponse response = HttpResponse::Text(200, "hi");
  response.SetHeader("content-type", "text/csv");
  EXPECT_THAT(response.headers, ElementsAre(Pair("content-type", "text/csv")));
}

TEST(SdkHttpResponse, MessageIsJsonWithEscaping) {
  HttpResponse response = HttpResponse::Message(404, "no \"route\"\n");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, R"({"message":"no \"route\"\n"})");
  EXPECT_THAT(response.headers, ElementsAre(Pair("Content-Type", "application/json")));
}

TEST(SdkJson, UserUsesTracimFieldNames) {
  User user;
  user.set_user_id(3);
  user.set_public_name("Ann");
  user.set_profile("administrators");
  EXPECT_EQ(boost::json::serialize(ToJson(user)),
            R"({"user_id":3,"email":"","username":"","public_name":"Ann",)"
            R"("profile":"administrators","is_active":false,"is_deleted":false,"lang":"",)"
            R"("timezone":""})");
  HttpResponse response = JsonResponse(201, boost::json::object{{"ok", true}});
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, R"({"ok":true})");
}

}  // namespace
}  // namespace tracim::plugin
