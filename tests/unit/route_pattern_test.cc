// Tests for the route rules shared by the broker and the C++ SDK: the route
// methods, the plugin prefix, RoutePattern's parse rules with their exact
// messages, shape(), IsUnder(), Specificity(), Match() with parameters,
// percent-decoding and the malformed escapes that make a request path match
// nothing, and MatchDecoded() for paths that are already decoded.
#include "tracim/plugin/v1/route_pattern.h"

#include <cstdlib>
#include <iterator>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::plugin::v1 {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Pair;

RoutePattern ParseOrDie(absl::string_view pattern) {
  absl::StatusOr<RoutePattern> p = RoutePattern::Parse(pattern);
  EXPECT_TRUE(p.ok()) << pattern << ": " << p.status();
  if (!p.ok()) std::abort();
  return *std::move(p);
}

// --- Route methods and the plugin prefix ----------------------------------

TEST(IsRouteMethod, AcceptsEveryListedMethod) {
  for (const char* method : kRouteMethods) EXPECT_TRUE(IsRouteMethod(method)) << method;
  EXPECT_THAT(std::vector<std::string>(std::begin(kRouteMethods), std::end(kRouteMethods)),
              ElementsAre("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"));
}

TEST(IsRouteMethod, RefusesLowerCaseEmptyAndUnlistedMethods) {
  for (const char* method : {"get", "Get", "", "CONNECT", "TRACE", "GET "}) {
    EXPECT_FALSE(IsRouteMethod(method)) << "'" << method << "'";
  }
}

TEST(PluginRoutePrefix, IsThePluginsFolderOfTheName) {
  EXPECT_EQ(PluginRoutePrefix("hello_world"), "/plugins/hello_world/");
  EXPECT_TRUE(ParseOrDie("/plugins/hello_world/user").IsUnder(PluginRoutePrefix("hello_world")));
}

// --- Parse: accepted patterns ---------------------------------------------

TEST(RoutePatternParse, KeepsTheLiteralPatternAsItsShape) {
  RoutePattern p = ParseOrDie("/plugins/hello_world/user");
  EXPECT_EQ(p.pattern(), "/plugins/hello_world/user");
  EXPECT_EQ(p.shape(), "/plugins/hello_world/user");
}

TEST(RoutePatternParse, RenamesEveryParameterToBracesInTheShape) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}/files/{file_id}");
  EXPECT_EQ(p.pattern(), "/plugins/x/items/{id}/files/{file_id}");
  EXPECT_EQ(p.shape(), "/plugins/x/items/{}/files/{}");
}

TEST(RoutePatternParse, PatternsDifferingOnlyInParameterNamesHaveTheSameShape) {
  EXPECT_EQ(ParseOrDie("/plugins/x/{a}/b/{c}").shape(),
            ParseOrDie("/plugins/x/{other}/b/{_9}").shape());
}

TEST(RoutePatternParse, AcceptsEveryAllowedLiteralCharacter) {
  EXPECT_TRUE(RoutePattern::Parse("/plugins/x/AZaz09-._~!$&'()*+,;=:@%").ok());
}

TEST(RoutePatternParse, AcceptsParameterNamesOfLettersDigitsAndUnderscores) {
  for (const char* pattern : {"/p/{a}", "/p/{_}", "/p/{Id}", "/p/{a1}", "/p/{_x_9}"}) {
    EXPECT_TRUE(RoutePattern::Parse(pattern).ok()) << pattern;
  }
}

TEST(RoutePatternParse, AcceptsDotsInSegmentsThatAreNotDotSegments) {
  EXPECT_TRUE(RoutePattern::Parse("/p/.../.x/x./..y/a.b").ok());
}

// --- Parse: refused patterns, each with its exact message -----------------

struct BadPattern {
  const char* name;  // of the test case
  const char* pattern;
  const char* message;
};

// Keeps the pattern, not the struct's bytes, in failure output.
void PrintTo(const BadPattern& p, std::ostream* os) { *os << "'" << p.pattern << "'"; }

class RoutePatternParseError : public testing::TestWithParam<BadPattern> {};

TEST_P(RoutePatternParseError, IsInvalidArgumentWithExactMessage) {
  absl::StatusOr<RoutePattern> p = RoutePattern::Parse(GetParam().pattern);
  ASSERT_FALSE(p.ok()) << GetParam().pattern;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(p.status().message()), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RoutePatternParseError,
    testing::Values(
        BadPattern{"Empty", "", "route path '': must start with '/'"},
        BadPattern{"Relative", "plugins/x/y", "route path 'plugins/x/y': must start with '/'"},
        BadPattern{"RootOnly", "/", "route path '/': empty path segment"},
        BadPattern{"EmptySegment", "/plugins//x", "route path '/plugins//x': empty path segment"},
        BadPattern{"TrailingSlash", "/plugins/x/", "route path '/plugins/x/': empty path segment"},
        BadPattern{"DotSegment", "/plugins/./x",
                   "route path '/plugins/./x': '.' and '..' segments are not allowed"},
        BadPattern{"DotDotSegment", "/plugins/x/..",
                   "route path '/plugins/x/..': '.' and '..' segments are not allowed"},
        BadPattern{"QuestionMark", "/plugins/x?a=1",
                   "route path '/plugins/x?a=1': invalid character '?'"},
        BadPattern{"Hash", "/plugins/x#top", "route path '/plugins/x#top': invalid character '#'"},
        BadPattern{"Space", "/plugins/x y", "route path '/plugins/x y': invalid character ' '"},
        BadPattern{"Backslash", "/plugins/x/a\\b",
                   "route path '/plugins/x/a\\b': invalid character '\\'"},
        BadPattern{"BraceInsideLiteral", "/plugins/x/a{b",
                   "route path '/plugins/x/a{b': invalid character '{'"},
        BadPattern{"LoneOpeningBrace", "/plugins/x/{",
                   "route path '/plugins/x/{': malformed parameter '{'"},
        BadPattern{"LoneClosingBrace", "/plugins/x/}",
                   "route path '/plugins/x/}': malformed parameter '}'"},
        BadPattern{"UnclosedParameter", "/plugins/x/{id",
                   "route path '/plugins/x/{id': malformed parameter '{id'"},
        BadPattern{"UnopenedParameter", "/plugins/x/id}",
                   "route path '/plugins/x/id}': malformed parameter 'id}'"},
        BadPattern{"TextBeforeParameter", "/plugins/x/a{id}",
                   "route path '/plugins/x/a{id}': malformed parameter 'a{id}'"},
        BadPattern{"TextAfterParameter", "/plugins/x/{id}.json",
                   "route path '/plugins/x/{id}.json': malformed parameter '{id}.json'"},
        BadPattern{"EmptyParameterName", "/plugins/x/{}",
                   "route path '/plugins/x/{}': invalid parameter name ''"},
        BadPattern{"ParameterNameStartingWithDigit", "/plugins/x/{1id}",
                   "route path '/plugins/x/{1id}': invalid parameter name '1id'"},
        BadPattern{"ParameterNameWithDash", "/plugins/x/{my-id}",
                   "route path '/plugins/x/{my-id}': invalid parameter name 'my-id'"},
        BadPattern{"BraceInParameterName", "/plugins/x/{a{b}",
                   "route path '/plugins/x/{a{b}': invalid parameter name 'a{b'"},
        BadPattern{"RepeatedParameter", "/plugins/x/{id}/{id}",
                   "route path '/plugins/x/{id}/{id}': parameter 'id' appears twice"},
        // The first problem from the left is reported.
        BadPattern{"FirstProblemFromTheLeft", "/plugins//{1}",
                   "route path '/plugins//{1}': empty path segment"},
        BadPattern{"FirstProblemFromTheLeftAgain", "/plugins/{1}/a b",
                   "route path '/plugins/{1}/a b': invalid parameter name '1'"}),
    [](const testing::TestParamInfo<BadPattern>& info) { return std::string(info.param.name); });

// --- IsUnder --------------------------------------------------------------

TEST(RoutePatternIsUnder, IsTrueForALiteralSegmentBelowThePrefix) {
  EXPECT_TRUE(ParseOrDie("/plugins/hello_world/user").IsUnder("/plugins/hello_world/"));
  EXPECT_TRUE(ParseOrDie("/plugins/hello_world/a/b/c").IsUnder("/plugins/hello_world/"));
}

TEST(RoutePatternIsUnder, IsTrueForAParameterBelowThePrefix) {
  EXPECT_TRUE(ParseOrDie("/plugins/hello_world/{id}").IsUnder("/plugins/hello_world/"));
}

TEST(RoutePatternIsUnder, IsFalseForThePrefixItselfWithoutOneMoreSegment) {
  EXPECT_FALSE(ParseOrDie("/plugins/hello_world").IsUnder("/plugins/hello_world/"));
  EXPECT_FALSE(ParseOrDie("/plugins").IsUnder("/plugins/hello_world/"));
}

TEST(RoutePatternIsUnder, IsFalseUnderAnotherPluginEvenWithACommonNamePrefix) {
  EXPECT_FALSE(ParseOrDie("/plugins/hello/user").IsUnder("/plugins/hello_world/"));
  EXPECT_FALSE(ParseOrDie("/plugins/hello_world_2/user").IsUnder("/plugins/hello_world/"));
  EXPECT_FALSE(ParseOrDie("/plugins/other/user").IsUnder("/plugins/hello_world/"));
}

TEST(RoutePatternIsUnder, IsFalseOutsidePlugins) {
  EXPECT_FALSE(ParseOrDie("/api/hello_world/user").IsUnder("/plugins/hello_world/"));
  EXPECT_FALSE(ParseOrDie("/hello_world/plugins/user").IsUnder("/plugins/hello_world/"));
}

TEST(RoutePatternIsUnder, IsFalseWhenAParameterStandsForAPrefixSegment) {
  EXPECT_FALSE(ParseOrDie("/plugins/{name}/user").IsUnder("/plugins/hello_world/"));
  EXPECT_FALSE(ParseOrDie("/{p}/hello_world/user").IsUnder("/plugins/hello_world/"));
}

// --- Specificity ----------------------------------------------------------

TEST(RoutePatternSpecificity, MarksLiteralSegmentsTrueAndParametersFalse) {
  EXPECT_THAT(ParseOrDie("/plugins/x/items/{id}/files").Specificity(),
              ElementsAre(true, true, true, false, true));
}

TEST(RoutePatternSpecificity, RanksALiteralAboveAParameterInTheSamePlace) {
  EXPECT_GT(ParseOrDie("/plugins/x/items/new").Specificity(),
            ParseOrDie("/plugins/x/items/{id}").Specificity());
  EXPECT_GT(ParseOrDie("/plugins/x/{a}/new").Specificity(),
            ParseOrDie("/plugins/x/{a}/{b}").Specificity());
}

// --- Match ----------------------------------------------------------------

TEST(RoutePatternMatch, MatchesAnIdenticalLiteralPathWithNoParameters) {
  RoutePattern p = ParseOrDie("/plugins/x/items");
  EXPECT_THAT(p.Match("/plugins/x/items"), Optional(IsEmpty()));
}

TEST(RoutePatternMatch, ReturnsEachParameterByName) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}/files/{file_id}");
  EXPECT_THAT(p.Match("/plugins/x/items/42/files/a.txt"),
              Optional(ElementsAre(Pair("file_id", "a.txt"), Pair("id", "42"))));
}

TEST(RoutePatternMatch, PercentDecodesParametersWithHexDigitsOfEitherCase) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}");
  EXPECT_THAT(p.Match("/plugins/x/items/a%20b%2Fc%41%6a%e2%82%AC"),
              Optional(ElementsAre(Pair("id", "a b/cAj\xe2\x82\xac"))));
}

TEST(RoutePatternMatch, LeavesPlusAndOtherCharactersUndecoded) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}");
  EXPECT_THAT(p.Match("/plugins/x/items/a+b~c"), Optional(ElementsAre(Pair("id", "a+b~c"))));
}

TEST(RoutePatternMatch, ComparesLiteralSegmentsUndecoded) {
  RoutePattern p = ParseOrDie("/plugins/x/items");
  EXPECT_EQ(p.Match("/plugins/x/it%65ms"), std::nullopt);
}

TEST(RoutePatternMatch, ComparesLiteralSegmentsCaseSensitively) {
  RoutePattern p = ParseOrDie("/plugins/x/items");
  EXPECT_EQ(p.Match("/plugins/x/Items"), std::nullopt);
  EXPECT_EQ(p.Match("/Plugins/x/items"), std::nullopt);
}

TEST(RoutePatternMatch, DoesNotMatchAMalformedEscapeInAParameter) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}");
  for (const char* path :
       {"/plugins/x/items/%", "/plugins/x/items/%4", "/plugins/x/items/a%", "/plugins/x/items/a%2",
        "/plugins/x/items/%zz", "/plugins/x/items/%4g", "/plugins/x/items/%g4",
        "/plugins/x/items/%%41", "/plugins/x/items/ok%41%2"}) {
    EXPECT_EQ(p.Match(path), std::nullopt) << path;
  }
}

TEST(RoutePatternMatch, DoesNotMatchAnEmptyParameter) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}/files");
  EXPECT_EQ(p.Match("/plugins/x/items//files"), std::nullopt);
}

TEST(RoutePatternMatch, DoesNotMatchAnotherNumberOfSegments) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}");
  EXPECT_EQ(p.Match("/plugins/x/items"), std::nullopt);
  EXPECT_EQ(p.Match("/plugins/x/items/42/more"), std::nullopt);
  EXPECT_EQ(p.Match("/plugins/x/items/42/"), std::nullopt);
}

TEST(RoutePatternMatch, DoesNotMatchAPathThatIsEmptyOrRelative) {
  RoutePattern p = ParseOrDie("/plugins/x/items");
  EXPECT_EQ(p.Match(""), std::nullopt);
  EXPECT_EQ(p.Match("plugins/x/items"), std::nullopt);
}

TEST(RoutePatternMatch, DoesNotMatchADifferentLiteralAroundAParameter) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}/files");
  EXPECT_EQ(p.Match("/plugins/x/items/42/folders"), std::nullopt);
  EXPECT_EQ(p.Match("/plugins/y/items/42/files"), std::nullopt);
}

// --- MatchDecoded ---------------------------------------------------------

TEST(RoutePatternMatchDecoded, AgreesWithMatchOnWhichPathsFitThePattern) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}");
  for (const char* path :
       {"/plugins/x/items/1", "/plugins/x/things/1", "/plugins/x/items", "/plugins/x/items/1/more",
        "/plugins/x/items/", "plugins/x/items/1", ""}) {
    EXPECT_EQ(p.MatchDecoded(path).has_value(), p.Match(path).has_value()) << "'" << path << "'";
  }
}

TEST(RoutePatternMatchDecoded, TakesParametersAsTheyAreWhereMatchWouldDecodeOrRefuse) {
  RoutePattern p = ParseOrDie("/plugins/x/items/{id}/files/{file_id}");
  const char* path = "/plugins/x/items/100%/files/a%41 b";
  EXPECT_EQ(p.Match(path), std::nullopt);  // "100%" is a malformed escape.
  EXPECT_THAT(p.MatchDecoded(path),
              Optional(ElementsAre(Pair("file_id", "a%41 b"), Pair("id", "100%"))));
}

}  // namespace
}  // namespace tracim::plugin::v1
