#include "sdk_cpp/src/route_pattern.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::plugin::internal {
namespace {

using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(SdkRoutePattern, MatchesLiteralAndParamSegmentsAndExtractsParams) {
  absl::StatusOr<RoutePattern> pattern =
      RoutePattern::Parse("/plugins/x/workspaces/{workspace_id}/items/{id}", "x");
  ASSERT_TRUE(pattern.ok()) << pattern.status();
  auto params = pattern->Match("/plugins/x/workspaces/3/items/abc");
  ASSERT_TRUE(params.has_value());
  EXPECT_THAT(*params, UnorderedElementsAre(Pair("workspace_id", "3"), Pair("id", "abc")));
}

TEST(SdkRoutePattern, DoesNotMatchOtherLiteralsOrSegmentCounts) {
  absl::StatusOr<RoutePattern> pattern = RoutePattern::Parse("/plugins/x/items/{id}", "x");
  ASSERT_TRUE(pattern.ok());
  EXPECT_FALSE(pattern->Match("/plugins/x/things/1").has_value());
  EXPECT_FALSE(pattern->Match("/plugins/x/items").has_value());
  EXPECT_FALSE(pattern->Match("/plugins/x/items/1/more").has_value());
  EXPECT_FALSE(pattern->Match("/plugins/x/items/").has_value());
  EXPECT_FALSE(pattern->Match("plugins/x/items/1").has_value());
}

TEST(SdkRoutePattern, RefusesAPathOutsideThePluginsPrefix) {
  absl::StatusOr<RoutePattern> pattern = RoutePattern::Parse("/plugins/other/user", "x");
  EXPECT_EQ(pattern.status(), absl::InvalidArgumentError(
                                  "route path '/plugins/other/user' must be under /plugins/x/"));
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/", "x").status(),
            absl::InvalidArgumentError("route path '/plugins/x/' must be under /plugins/x/"));
}

TEST(SdkRoutePattern, RefusesEmptySegments) {
  EXPECT_EQ(RoutePattern::Parse("/plugins/x//a", "x").status(),
            absl::InvalidArgumentError("route path '/plugins/x//a' has an empty segment"));
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/a/", "x").status(),
            absl::InvalidArgumentError("route path '/plugins/x/a/' has an empty segment"));
}

TEST(SdkRoutePattern, RefusesMalformedParamsAndLiterals) {
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/{id", "x").status(),
            absl::InvalidArgumentError(
                "route path '/plugins/x/{id' has a malformed parameter segment '{id' "
                "(expected {name}, name a C identifier)"));
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/{1a}", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/a{id}", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      RoutePattern::Parse("/plugins/x/{id}/{id}", "x").status(),
      absl::InvalidArgumentError("route path '/plugins/x/{id}/{id}' repeats the parameter 'id'"));
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/a?b", "x").status(),
            absl::InvalidArgumentError("route path '/plugins/x/a?b' has a segment with a character "
                                       "outside [A-Za-z0-9-._~!$&'()*+,;=:@%]: 'a?b'"));
  EXPECT_EQ(RoutePattern::Parse("/plugins/x/a/../b", "x").status(),
            absl::InvalidArgumentError("route path '/plugins/x/a/../b' has a '.' or '..' segment"));
}

TEST(SdkRoutePattern, ShapeIgnoresParamNames) {
  auto a = RoutePattern::Parse("/plugins/x/items/{id}", "x");
  auto b = RoutePattern::Parse("/plugins/x/items/{item}", "x");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Shape(), "/plugins/x/items/{}");
  EXPECT_EQ(a->Shape(), b->Shape());
}

TEST(SdkRoutePattern, LiteralSegmentsAreMoreSpecificThanParams) {
  auto literal = RoutePattern::Parse("/plugins/x/items/new", "x");
  auto param = RoutePattern::Parse("/plugins/x/items/{id}", "x");
  ASSERT_TRUE(literal.ok() && param.ok());
  EXPECT_GT(literal->Specificity(), param->Specificity());
}

TEST(SdkIsRouteMethod, AcceptsOnlyUpperCaseProtocolMethods) {
  EXPECT_TRUE(IsRouteMethod("GET"));
  EXPECT_TRUE(IsRouteMethod("OPTIONS"));
  EXPECT_FALSE(IsRouteMethod("get"));
  EXPECT_FALSE(IsRouteMethod("CONNECT"));
}

}  // namespace
}  // namespace tracim::plugin::internal
