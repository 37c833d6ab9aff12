// The route proxy's pure pieces: route lookup (specificity, 404/405 and
// Allow), what a plugin receives (credentials and asserted identity
// withheld, X-Request-Id, X-Forwarded-For), response heads, and the
// registry of requests in flight behind HostApi.GetCurrentUser.
#include <string>
#include <thread>
#include <vector>

#include "broker/proxy/forwarding.h"
#include "broker/proxy/in_flight_requests.h"
#include "broker/proxy/route_lookup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;
using ::testing::ElementsAre;
using ::testing::Pair;

RegisteredRoute Route(const std::string& method, const std::string& pattern,
                      bool is_public = true) {
  absl::StatusOr<v1::RoutePattern> parsed = v1::RoutePattern::Parse(pattern);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return RegisteredRoute{method, *parsed, is_public, absl::ZeroDuration()};
}

std::vector<RegisteredRoute> WikiRoutes() {
  return {Route("GET", "/plugins/wiki/items/{id}"), Route("DELETE", "/plugins/wiki/items/{id}"),
          Route("GET", "/plugins/wiki/items/new"), Route("POST", "/plugins/wiki/items/{id}/tags"),
          Route("HEAD", "/plugins/wiki/items/{id}")};
}

TEST(LookupRoute, MatchesMethodAndPatternWithDecodedParams) {
  const auto routes = WikiRoutes();
  RouteLookup found = LookupRoute(routes, "POST", "/plugins/wiki/items/a%20b/tags");
  ASSERT_EQ(found.outcome, RouteLookup::Outcome::kMatched);
  EXPECT_EQ(found.route, &routes[3]);
  EXPECT_THAT(found.params, ElementsAre(Pair("id", "a b")));
}

TEST(LookupRoute, PrefersTheMostSpecificPattern) {
  const auto routes = WikiRoutes();
  RouteLookup found = LookupRoute(routes, "GET", "/plugins/wiki/items/new");
  ASSERT_EQ(found.outcome, RouteLookup::Outcome::kMatched);
  EXPECT_EQ(found.route->pattern.pattern(), "/plugins/wiki/items/new");
  EXPECT_TRUE(found.params.empty());
  // DELETE exists only on the parameterised pattern, which matches too.
  found = LookupRoute(routes, "DELETE", "/plugins/wiki/items/new");
  ASSERT_EQ(found.outcome, RouteLookup::Outcome::kMatched);
  EXPECT_EQ(found.route->pattern.pattern(), "/plugins/wiki/items/{id}");
  EXPECT_THAT(found.params, ElementsAre(Pair("id", "new")));
}

TEST(LookupRoute, ListsTheAllowedMethodsInCanonicalOrderWhenOnlyTheMethodDiffers) {
  const auto routes = WikiRoutes();
  RouteLookup found = LookupRoute(routes, "PUT", "/plugins/wiki/items/7");
  ASSERT_EQ(found.outcome, RouteLookup::Outcome::kMethodNotAllowed);
  EXPECT_EQ(found.route, nullptr);
  EXPECT_THAT(found.allowed, ElementsAre("GET", "HEAD", "DELETE"));
  // Methods are case-sensitive.
  EXPECT_EQ(LookupRoute(routes, "get", "/plugins/wiki/items/7").outcome,
            RouteLookup::Outcome::kMethodNotAllowed);
}

TEST(LookupRoute, ReportsNotFoundWhenNoPatternMatchesThePath) {
  const auto routes = WikiRoutes();
  for (const char* path : {"/plugins/wiki/items", "/plugins/wiki/items/7/tags/x",
                           "/plugins/wiki/other", "/plugins/wiki/items/%zz/tags"}) {
    SCOPED_TRACE(path);
    RouteLookup found = LookupRoute(routes, "GET", path);
    EXPECT_EQ(found.outcome, RouteLookup::Outcome::kNotFound);
    EXPECT_TRUE(found.allowed.empty());
  }
  EXPECT_EQ(LookupRoute({}, "GET", "/plugins/wiki/x").outcome, RouteLookup::Outcome::kNotFound);
}

HttpRequestHead Request() {
  HttpRequestHead request;
  request.method = "POST";
  request.target = "/plugins/wiki/items/a%2Fb/tags?x=1&y=%20";
  request.path = "/plugins/wiki/items/a%2Fb/tags";
  request.query = "x=1&y=%20";
  request.client_address = "127.0.0.1";
  request.client_port = 51234;
  request.request_id = "req-42";
  request.content_length = 12;
  request.headers = {{"Host", "localhost"},
                     {"Content-Type", "application/json"},
                     {"Authorization", "Basic YTpi"},
                     {"cookie", "session=1"},
                     {"Tracim-Api-Key", "k"},
                     {"TRACIM-API-LOGIN", "admin"},
                     {"Proxy-Authorization", "Basic YTpi"},
                     {"X-Remote-User", "admin"},
                     {"Remote-User", "admin"},
                     {"X-Tracim-User-Id", "1"},
                     {"X-Forwarded-User", "admin"},
                     {"Connection", "keep-alive, X-Hop"},
                     {"X-Hop", "1"},
                     {"Keep-Alive", "timeout=5"},
                     {"Transfer-Encoding", "chunked"},
                     {"Expect", "100-continue"},
                     {"X-Request-Id", "client-chosen"},
                     {"X-Forwarded-For", "10.1.1.1"},
                     {"x-forwarded-for", "10.2.2.2"},
                     {"Content-Length", "12"},
                     {"X-Custom", "kept"}};
  return request;
}

std::vector<std::pair<std::string, std::string>> Headers(const v1::HttpRequestHead& head) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& h : head.headers()) out.emplace_back(h.name(), h.value());
  return out;
}

TEST(BuildPluginRequestHead, WithholdsCredentialsAssertedIdentityAndHopByHopFields) {
  const RegisteredRoute route = Route("POST", "/plugins/wiki/items/{id}/tags");
  v1::User user;
  user.set_user_id(7);
  user.set_username("ann");
  v1::HttpRequestHead head = BuildPluginRequestHead(Request(), route, {{"id", "a/b"}}, user);
  EXPECT_EQ(head.method(), "POST");
  EXPECT_EQ(head.path(), "/plugins/wiki/items/a/b/tags");
  EXPECT_EQ(head.query(), "x=1&y=%20");
  EXPECT_EQ(head.route(), "/plugins/wiki/items/{id}/tags");
  EXPECT_THAT(head.path_params(), ::testing::UnorderedElementsAre(Pair("id", "a/b")));
  EXPECT_THAT(Headers(head),
              ElementsAre(Pair("Host", "localhost"), Pair("Content-Type", "application/json"),
                          Pair("Content-Length", "12"), Pair("X-Custom", "kept"),
                          Pair("X-Request-Id", "req-42"),
                          Pair("X-Forwarded-For", "10.1.1.1, 10.2.2.2, 127.0.0.1")));
  EXPECT_EQ(head.request_id(), "req-42");
  EXPECT_EQ(head.remote_addr(), "127.0.0.1:51234");
  EXPECT_EQ(head.user().user_id(), 7);
  EXPECT_EQ(head.user().username(), "ann");
  EXPECT_EQ(head.content_length(), 12);
}

TEST(BuildPluginRequestHead, AnonymousWithoutContentLengthAndIpv6Client) {
  HttpRequestHead request;
  request.method = "GET";
  request.path = "/plugins/wiki/items/new";
  request.client_address = "::1";
  request.client_port = 8080;
  request.request_id = "r";
  v1::HttpRequestHead head =
      BuildPluginRequestHead(request, Route("GET", "/plugins/wiki/items/new"), {}, std::nullopt);
  EXPECT_FALSE(head.has_user());
  EXPECT_EQ(head.content_length(), -1);
  EXPECT_EQ(head.remote_addr(), "[::1]:8080");
  EXPECT_THAT(Headers(head),
              ElementsAre(Pair("X-Request-Id", "r"), Pair("X-Forwarded-For", "::1")));
}

TEST(IsWithheldRequestHeader, IgnoresCase) {
  EXPECT_TRUE(IsWithheldRequestHeader("AUTHORIZATION"));
  EXPECT_TRUE(IsWithheldRequestHeader("x-tracim-anything"));
  EXPECT_TRUE(IsWithheldRequestHeader("X-Auth-Request-Email"));
  EXPECT_FALSE(IsWithheldRequestHeader("Accept"));
  EXPECT_FALSE(IsWithheldRequestHeader("X-Tracimish"));
}

TEST(ToHttpResponseHead, KeepsFieldsDropsHopByHopAndDeclaresContentLength) {
  v1::HttpResponseHead head;
  head.set_status(201);
  auto add = [&](const char* n, const char* v) {
    v1::HttpHeader* h = head.add_headers();
    h->set_name(n);
    h->set_value(v);
  };
  add("Content-Type", "text/plain");
  add("Connection", "close");
  add("Transfer-Encoding", "chunked");
  add("content-length", " 42 ");
  add("Set-Cookie", "a=1");
  absl::StatusOr<HttpResponseHead> out = ToHttpResponseHead(head);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, 201);
  EXPECT_EQ(out->content_length, 42u);
  EXPECT_THAT(out->headers.fields(),
              ElementsAre(Pair("Content-Type", "text/plain"), Pair("Set-Cookie", "a=1")));
}

TEST(ToHttpResponseHead, RefusesStatusesAndLengthsThatCannotBeRelayed) {
  v1::HttpResponseHead head;
  head.set_status(101);
  EXPECT_EQ(ToHttpResponseHead(head).status(),
            absl::InvalidArgumentError("status 101 cannot be relayed (expected 200-599)"));
  head.set_status(600);
  EXPECT_EQ(ToHttpResponseHead(head).status(),
            absl::InvalidArgumentError("status 600 cannot be relayed (expected 200-599)"));
  head.set_status(200);
  v1::HttpHeader* h = head.add_headers();
  h->set_name("Content-Length");
  h->set_value("-1");
  EXPECT_EQ(ToHttpResponseHead(head).status(),
            absl::InvalidArgumentError("invalid Content-Length '-1'"));
  h->set_value("5");
  h = head.add_headers();
  h->set_name("Content-Length");
  h->set_value("6");
  EXPECT_EQ(ToHttpResponseHead(head).status(),
            absl::InvalidArgumentError("conflicting Content-Length fields"));
}

v1::User UserWithId(int64_t id) {
  v1::User user;
  user.set_user_id(id);
  user.set_username("user" + std::to_string(id));
  return user;
}

TEST(InFlightRequests, FindsTheUserOnlyForThatPluginWhileTheEntryLives) {
  InFlightRequests in_flight;
  {
    InFlightRequests::Entry entry = in_flight.Add("wiki", "r1", UserWithId(7));
    EXPECT_EQ(in_flight.size(), 1u);
    std::optional<v1::User> user = in_flight.Find("wiki", "r1");
    ASSERT_TRUE(user.has_value());
    EXPECT_EQ(user->user_id(), 7);
    EXPECT_EQ(user->username(), "user7");
    EXPECT_FALSE(in_flight.Find("other", "r1").has_value());
    EXPECT_FALSE(in_flight.Find("wiki", "r2").has_value());
  }
  EXPECT_FALSE(in_flight.Find("wiki", "r1").has_value());
  EXPECT_EQ(in_flight.size(), 0u);
}

TEST(InFlightRequests, AnonymousRequestsHaveNoUser) {
  InFlightRequests in_flight;
  InFlightRequests::Entry entry = in_flight.Add("wiki", "r1", std::nullopt);
  EXPECT_FALSE(in_flight.Find("wiki", "r1").has_value());
  EXPECT_EQ(in_flight.size(), 1u);
}

TEST(InFlightRequests, CollidingRequestIdsOfDifferentUsersGiveNoUser) {
  InFlightRequests in_flight;
  InFlightRequests::Entry a = in_flight.Add("wiki", "same", UserWithId(1));
  {
    InFlightRequests::Entry b = in_flight.Add("wiki", "same", UserWithId(2));
    EXPECT_FALSE(in_flight.Find("wiki", "same").has_value());
    InFlightRequests::Entry c = in_flight.Add("wiki", "same", std::nullopt);
    EXPECT_FALSE(in_flight.Find("wiki", "same").has_value());
  }
  EXPECT_EQ(in_flight.Find("wiki", "same")->user_id(), 1);
  InFlightRequests::Entry d = in_flight.Add("wiki", "same", UserWithId(1));
  EXPECT_EQ(in_flight.Find("wiki", "same")->user_id(), 1);
}

TEST(InFlightRequests, EntriesMoveAndResetOnce) {
  InFlightRequests in_flight;
  InFlightRequests::Entry a = in_flight.Add("wiki", "r", UserWithId(1));
  InFlightRequests::Entry b = std::move(a);
  a.Reset();  // moved-from: nothing to remove
  EXPECT_TRUE(in_flight.Find("wiki", "r").has_value());
  b = in_flight.Add("wiki", "s", UserWithId(2));  // removes "r"
  EXPECT_FALSE(in_flight.Find("wiki", "r").has_value());
  EXPECT_TRUE(in_flight.Find("wiki", "s").has_value());
  b.Reset();
  b.Reset();
  EXPECT_EQ(in_flight.size(), 0u);
}

TEST(InFlightRequests, IsSafeFromManyThreads) {
  InFlightRequests in_flight;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&in_flight, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        InFlightRequests::Entry e = in_flight.Add("p", id, UserWithId(t));
        EXPECT_EQ(in_flight.Find("p", id)->user_id(), t);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(in_flight.size(), 0u);
}

}  // namespace
}  // namespace tracim::broker
