// Tests for NegotiateProtocolVersion and ValidateRegistration: a full valid
// request, then every refusal with its exact code and message, and the order
// in which the problems are checked (the first one found is reported).
#include "broker/handshake/registration_validator.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tracim/plugin/v1/broker.pb.h"

namespace tracim::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using tracim::plugin::v1::RegisterRequest;

constexpr char kName[] = "hello_world";
constexpr char kMethodList[] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

// A request that passes every check, without hooks or routes.
RegisterRequest ValidRequest() {
  RegisterRequest r;
  r.set_name(kName);
  r.set_version("1.2.3");
  r.set_protocol_version(1);
  r.set_description("Says hello");
  return r;
}

void AddRoute(RegisterRequest& r, const std::string& method, const std::string& path,
              uint32_t timeout_ms = 0, bool public_route = false) {
  auto* route = r.add_routes();
  route->set_method(method);
  route->set_path(path);
  route->set_timeout_ms(timeout_ms);
  route->set_public_(public_route);
}

// Expects `request` refused with exactly `code` and `message`.
void ExpectRefused(const RegisterRequest& request, absl::StatusCode code,
                   const std::string& message) {
  absl::StatusOr<Registration> r = ValidateRegistration(request, kName);
  ASSERT_FALSE(r.ok()) << request.DebugString();
  EXPECT_EQ(r.status().code(), code);
  EXPECT_EQ(std::string(r.status().message()), message);
}

// --- NegotiateProtocolVersion ---------------------------------------------

TEST(NegotiateProtocolVersion, BrokerSpeaksVersionOne) {
  EXPECT_THAT(kSupportedProtocolVersions, ElementsAre(1u));
}

TEST(NegotiateProtocolVersion, ReturnsTheRequestedVersionWhenSupported) {
  EXPECT_EQ(NegotiateProtocolVersion(1, kSupportedProtocolVersions).value(), 1u);
  const std::vector<uint32_t> several = {1, 2, 3};
  EXPECT_EQ(NegotiateProtocolVersion(2, several).value(), 2u);
}

TEST(NegotiateProtocolVersion, RefusesAnUnsupportedVersionListingWhatTheBrokerSpeaks) {
  absl::StatusOr<uint32_t> v = NegotiateProtocolVersion(7, kSupportedProtocolVersions);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(v.status().message()),
            "unsupported protocol version 7 (the broker speaks 1)");

  const std::vector<uint32_t> several = {1, 2};
  v = NegotiateProtocolVersion(3, several);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(v.status().message()),
            "unsupported protocol version 3 (the broker speaks 1, 2)");
}

TEST(NegotiateProtocolVersion, RefusesVersionZeroAsNotSet) {
  absl::StatusOr<uint32_t> v = NegotiateProtocolVersion(0, kSupportedProtocolVersions);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(v.status().message()), "protocol_version is not set (the broker speaks 1)");
}

// --- ValidateRegistration: accepted requests -------------------------------

TEST(ValidateRegistration, AcceptsAFullValidRequest) {
  RegisterRequest req = ValidRequest();
  req.add_hooks("on_plugins_loaded");
  req.add_hooks("on_user_created");
  req.add_hooks("on_content_modified");
  AddRoute(req, "GET", "/plugins/hello_world/user");
  AddRoute(req, "POST", "/plugins/hello_world/items/{id}", /*timeout_ms=*/2500,
           /*public_route=*/true);
  AddRoute(req, "DELETE", "/plugins/hello_world/items/{id}", /*timeout_ms=*/3'600'000);

  absl::StatusOr<Registration> r = ValidateRegistration(req, kName);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "hello_world");
  EXPECT_EQ(r->version, "1.2.3");
  EXPECT_EQ(r->description, "Says hello");
  EXPECT_EQ(r->protocol_version, 1u);
  EXPECT_THAT(r->hooks, ElementsAre("on_plugins_loaded", "on_user_created", "on_content_modified"));
  ASSERT_EQ(r->routes.size(), 3u);
  EXPECT_EQ(r->routes[0].method, "GET");
  EXPECT_EQ(r->routes[0].pattern.pattern(), "/plugins/hello_world/user");
  EXPECT_FALSE(r->routes[0].public_route);
  EXPECT_EQ(r->routes[0].timeout, absl::ZeroDuration());
  EXPECT_EQ(r->routes[1].method, "POST");
  EXPECT_EQ(r->routes[1].pattern.pattern(), "/plugins/hello_world/items/{id}");
  EXPECT_EQ(r->routes[1].pattern.shape(), "/plugins/hello_world/items/{}");
  EXPECT_TRUE(r->routes[1].public_route);
  EXPECT_EQ(r->routes[1].timeout, absl::Milliseconds(2500));
  EXPECT_EQ(r->routes[2].method, "DELETE");
  EXPECT_EQ(r->routes[2].timeout, absl::Hours(1));
}

TEST(ValidateRegistration, AcceptsARequestWithoutHooksOrRoutes) {
  absl::StatusOr<Registration> r = ValidateRegistration(ValidRequest(), kName);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->hooks, IsEmpty());
  EXPECT_THAT(r->routes, IsEmpty());
}

TEST(ValidateRegistration, AcceptsEverySupportedMethod) {
  RegisterRequest req = ValidRequest();
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    AddRoute(req, method, "/plugins/hello_world/thing");
  }
  absl::StatusOr<Registration> r = ValidateRegistration(req, kName);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->routes.size(), 7u);
}

TEST(ValidateRegistration, DeduplicatesHooksKeepingTheFirstOccurrenceOrder) {
  RegisterRequest req = ValidRequest();
  for (const char* hook : {"on_user_created", "on_content_created", "on_user_created",
                           "on_plugins_loaded", "on_content_created"}) {
    req.add_hooks(hook);
  }
  absl::StatusOr<Registration> r = ValidateRegistration(req, kName);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->hooks, ElementsAre("on_user_created", "on_content_created", "on_plugins_loaded"));
}

TEST(ValidateRegistration, NegotiatesAgainstTheGivenSupportedVersions) {
  RegisterRequest req = ValidRequest();
  req.set_protocol_version(2);
  const std::vector<uint32_t> several = {1, 2};
  absl::StatusOr<Registration> r = ValidateRegistration(req, kName, several);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->protocol_version, 2u);
}

TEST(ValidateRegistration, AcceptsTheSamePathUnderDifferentMethods) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/items/{id}");
  AddRoute(req, "PUT", "/plugins/hello_world/items/{id}");
  EXPECT_TRUE(ValidateRegistration(req, kName).ok());
}

TEST(ValidateRegistration, AcceptsALiteralAndAParameterAtTheSamePlace) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/items/{id}");
  AddRoute(req, "GET", "/plugins/hello_world/items/new");
  EXPECT_TRUE(ValidateRegistration(req, kName).ok());
}

TEST(ValidateRegistration, AcceptsARouteThatIsOnlyAParameterBelowThePrefix) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/{page}");
  EXPECT_TRUE(ValidateRegistration(req, kName).ok());
}

// --- ValidateRegistration: refusals -----------------------------------------

TEST(ValidateRegistration, RefusesANameOtherThanTheLaunchedPlugin) {
  RegisterRequest req = ValidRequest();
  req.set_name("other");
  ExpectRefused(req, absl::StatusCode::kFailedPrecondition,
                "plugin name 'other' does not match the launched plugin 'hello_world'");
  req.set_name("");
  ExpectRefused(req, absl::StatusCode::kFailedPrecondition,
                "plugin name '' does not match the launched plugin 'hello_world'");
}

TEST(ValidateRegistration, RefusesProtocolVersionZero) {
  RegisterRequest req = ValidRequest();
  req.set_protocol_version(0);
  ExpectRefused(req, absl::StatusCode::kFailedPrecondition,
                "protocol_version is not set (the broker speaks 1)");
}

TEST(ValidateRegistration, RefusesAnUnsupportedProtocolVersion) {
  RegisterRequest req = ValidRequest();
  req.set_protocol_version(7);
  ExpectRefused(req, absl::StatusCode::kFailedPrecondition,
                "unsupported protocol version 7 (the broker speaks 1)");
}

TEST(ValidateRegistration, RefusesAnUnknownHook) {
  RegisterRequest req = ValidRequest();
  req.add_hooks("on_user_created");
  req.add_hooks("on_bogus");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument, "unknown hook 'on_bogus'");
}

TEST(ValidateRegistration, RefusesHookNamesInAnotherCaseAndInProcessOnlyHooks) {
  for (const char* hook : {"ON_USER_CREATED", "add_new_hooks", "web_include", ""}) {
    RegisterRequest req = ValidRequest();
    req.add_hooks(hook);
    ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                  std::string("unknown hook '") + hook + "'");
  }
}

TEST(ValidateRegistration, RefusesAnUnsupportedMethodListingTheSupportedOnes) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "get", "/plugins/hello_world/user");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                std::string("route 'get /plugins/hello_world/user': unsupported method 'get' "
                            "(expected one of ") +
                    kMethodList + ")");
}

TEST(ValidateRegistration, RefusesAnEmptyOrUnlistedMethod) {
  for (const char* method : {"", "CONNECT", "TRACE"}) {
    RegisterRequest req = ValidRequest();
    AddRoute(req, method, "/plugins/hello_world/user");
    ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                  std::string("route '") + method + " /plugins/hello_world/user': " +
                      "unsupported method '" + method + "' (expected one of " + kMethodList + ")");
  }
}

TEST(ValidateRegistration, RefusesAMalformedPathWithTheParserMessage) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/{id");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route path '/plugins/hello_world/{id': malformed parameter '{id'");
}

TEST(ValidateRegistration, RefusesARouteUnderAnotherPlugin) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/other/user");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route 'GET /plugins/other/user' is outside /plugins/hello_world/");
}

TEST(ValidateRegistration, RefusesARouteOutsidePlugins) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "POST", "/api/users");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route 'POST /api/users' is outside /plugins/hello_world/");
}

TEST(ValidateRegistration, RefusesAParameterInPlaceOfThePluginName) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/{name}/user");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route 'GET /plugins/{name}/user' is outside /plugins/hello_world/");
}

TEST(ValidateRegistration, RefusesThePluginPrefixAloneAsARoute) {
  RegisterRequest with_slash = ValidRequest();
  AddRoute(with_slash, "GET", "/plugins/hello_world/");
  ExpectRefused(with_slash, absl::StatusCode::kInvalidArgument,
                "route path '/plugins/hello_world/': empty path segment");

  RegisterRequest without_slash = ValidRequest();
  AddRoute(without_slash, "GET", "/plugins/hello_world");
  ExpectRefused(without_slash, absl::StatusCode::kInvalidArgument,
                "route 'GET /plugins/hello_world' is outside /plugins/hello_world/");
}

TEST(ValidateRegistration, RefusesAnIdenticalRouteTwice) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/user");
  AddRoute(req, "GET", "/plugins/hello_world/user");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "duplicate route 'GET /plugins/hello_world/user' "
                "(same as 'GET /plugins/hello_world/user')");
}

TEST(ValidateRegistration, RefusesARouteOfTheSameShapeWithOtherParameterNames) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/items/{id}/files/{file}");
  AddRoute(req, "POST", "/plugins/hello_world/items/{id}/files/{file}");
  AddRoute(req, "GET", "/plugins/hello_world/items/{item_id}/files/{name}");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "duplicate route 'GET /plugins/hello_world/items/{item_id}/files/{name}' "
                "(same as 'GET /plugins/hello_world/items/{id}/files/{file}')");
}

TEST(ValidateRegistration, RefusesATimeoutOverOneHour) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/slow", /*timeout_ms=*/3'600'001);
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route 'GET /plugins/hello_world/slow': timeout_ms 3600001 is over one hour");
}

// --- ValidateRegistration: the order of the checks --------------------------

TEST(ValidateRegistration, ChecksTheNameBeforeTheProtocolVersion) {
  RegisterRequest req = ValidRequest();
  req.set_name("other");
  req.set_protocol_version(0);
  ExpectRefused(req, absl::StatusCode::kFailedPrecondition,
                "plugin name 'other' does not match the launched plugin 'hello_world'");
}

TEST(ValidateRegistration, ChecksTheProtocolVersionBeforeTheHooks) {
  RegisterRequest req = ValidRequest();
  req.set_protocol_version(7);
  req.add_hooks("on_bogus");
  ExpectRefused(req, absl::StatusCode::kFailedPrecondition,
                "unsupported protocol version 7 (the broker speaks 1)");
}

TEST(ValidateRegistration, ChecksTheHooksBeforeTheRoutes) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "BREW", "not a path");
  req.add_hooks("on_bogus");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument, "unknown hook 'on_bogus'");
}

TEST(ValidateRegistration, ChecksARouteMethodBeforeItsPath) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "BREW", "/plugins/hello_world/{id");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                std::string("route 'BREW /plugins/hello_world/{id': unsupported method 'BREW' "
                            "(expected one of ") +
                    kMethodList + ")");
}

TEST(ValidateRegistration, ChecksARoutePathIsWellFormedBeforeWhereItLies) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/other/");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route path '/plugins/other/': empty path segment");
}

TEST(ValidateRegistration, ChecksWhereARouteLiesBeforeDuplicates) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/other/user");
  AddRoute(req, "GET", "/plugins/other/user");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route 'GET /plugins/other/user' is outside /plugins/hello_world/");
}

TEST(ValidateRegistration, ChecksDuplicatesBeforeTheTimeout) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/user");
  AddRoute(req, "GET", "/plugins/hello_world/user", /*timeout_ms=*/3'600'001);
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "duplicate route 'GET /plugins/hello_world/user' "
                "(same as 'GET /plugins/hello_world/user')");
}

TEST(ValidateRegistration, ReportsTheFirstBadRouteInTheOrderSent) {
  RegisterRequest req = ValidRequest();
  AddRoute(req, "GET", "/plugins/hello_world/ok");
  AddRoute(req, "GET", "/plugins/hello_world/slow", /*timeout_ms=*/4'000'000);
  AddRoute(req, "BREW", "/plugins/hello_world/pot");
  ExpectRefused(req, absl::StatusCode::kInvalidArgument,
                "route 'GET /plugins/hello_world/slow': timeout_ms 4000000 is over one hour");
}

}  // namespace
}  // namespace tracim::broker
