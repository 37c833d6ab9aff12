// Unit tests for broker/config: the INI reader (ParseIni), the typed config
// (ParseBrokerConfig / LoadBrokerConfig) and its environment overrides.
#include "broker/config/broker_config.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kHere[] = "/etc/tracim";
constexpr char kFile[] = "/etc/tracim/broker.ini";

std::map<std::string, std::string> SectionOf(const std::string& text, const std::string& section) {
  absl::StatusOr<IniFile> ini = ParseIni(text, kHere);
  EXPECT_TRUE(ini.ok()) << ini.status();
  if (!ini.ok()) return {};
  auto it = ini->sections.find(section);
  EXPECT_NE(it, ini->sections.end()) << "no section " << section;
  return it == ini->sections.end() ? std::map<std::string, std::string>{} : it->second;
}

void ExpectIniError(const std::string& text, const std::string& message) {
  absl::StatusOr<IniFile> ini = ParseIni(text, kHere);
  ASSERT_FALSE(ini.ok()) << "parsed: " << text;
  EXPECT_EQ(ini.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ini.status().message(), message);
}

// ParseBrokerConfig on `[app:main]` + `body`, no environment.
absl::StatusOr<BrokerConfig> AppMain(const std::string& body, const Environment& env = {}) {
  return ParseBrokerConfig("[app:main]\n" + body, kFile, env);
}

void ExpectConfigError(const std::string& body, const std::string& message,
                       const Environment& env = {}) {
  absl::StatusOr<BrokerConfig> config = AppMain(body, env);
  ASSERT_FALSE(config.ok()) << "accepted: " << body;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), message);
}

// ---------------------------------------------------------------------------
// ParseIni: structure.

TEST(ParseIni, ReadsSectionsWithBothDelimiters) {
  absl::StatusOr<IniFile> ini = ParseIni(
      "[server:main]\nport = 6543\n\n[app:main]\nbroker.listen: 0.0.0.0:80\nname=x\n", kHere);
  ASSERT_TRUE(ini.ok()) << ini.status();
  EXPECT_THAT(ini->sections,
              UnorderedElementsAre(
                  Pair("server:main", ElementsAre(Pair("port", "6543"))),
                  Pair("app:main", UnorderedElementsAre(Pair("broker.listen", "0.0.0.0:80"),
                                                        Pair("name", "x")))));
}

TEST(ParseIni, KeepsKeyCaseAsWritten) {
  EXPECT_THAT(SectionOf("[s]\nMixed.Key = 1\nmixed.key = 2\n", "s"),
              UnorderedElementsAre(Pair("Mixed.Key", "1"), Pair("mixed.key", "2")));
}

TEST(ParseIni, SplitsAtFirstDelimiterAndKeepsTheRest) {
  EXPECT_THAT(SectionOf("[s]\nurl = http://h:1/a=b\nlisten: [::1]:80\n", "s"),
              UnorderedElementsAre(Pair("url", "http://h:1/a=b"), Pair("listen", "[::1]:80")));
}

TEST(ParseIni, StripsWhitespaceAndAllowsEmptyValues) {
  EXPECT_THAT(
      SectionOf("[s]\n  spaced   =   a b  \nempty =\nalso_empty:\n", "s"),
      UnorderedElementsAre(Pair("spaced", "a b"), Pair("empty", ""), Pair("also_empty", "")));
}

TEST(ParseIni, TrimsSectionNamesAndListsEmptySections) {
  absl::StatusOr<IniFile> ini = ParseIni("[ empty ]\n[app:main] # trailing comment\n", kHere);
  ASSERT_TRUE(ini.ok()) << ini.status();
  EXPECT_THAT(ini->sections,
              UnorderedElementsAre(Pair("empty", IsEmpty()), Pair("app:main", IsEmpty())));
}

TEST(ParseIni, SkipsFullLineCommentsButNotInlineOnes) {
  EXPECT_THAT(SectionOf("# top\n; top\n[s]\n# c\n  ; indented comment\na = 1 # not a comment\n"
                        "b = 2 ; nor this\n",
                        "s"),
              UnorderedElementsAre(Pair("a", "1 # not a comment"), Pair("b", "2 ; nor this")));
}

TEST(ParseIni, JoinsIndentedContinuationLinesWithNewline) {
  EXPECT_THAT(
      SectionOf("[s]\nlist = one\n  two\n\ttwo_and_a_half\n    three\nnext = x\n", "s"),
      UnorderedElementsAre(Pair("list", "one\ntwo\ntwo_and_a_half\nthree"), Pair("next", "x")));
}

TEST(ParseIni, KeepsBlankLinesInsideAValueAndDropsTrailingOnes) {
  EXPECT_THAT(SectionOf("[s]\nv = a\n\n  b\n\n\nw = c\n", "s"),
              UnorderedElementsAre(Pair("v", "a\n\nb"), Pair("w", "c")));
}

TEST(ParseIni, SkipsCommentLinesInsideAContinuedValue) {
  EXPECT_THAT(SectionOf("[s]\nv = a\n  # gone\n  b\n", "s"), ElementsAre(Pair("v", "a\nb")));
}

TEST(ParseIni, ContinuationAfterEmptyFirstLineKeepsLeadingNewlineLikeConfigParser) {
  EXPECT_THAT(SectionOf("[s]\nv =\n  a\n  b\n", "s"), ElementsAre(Pair("v", "\na\nb")));
}

TEST(ParseIni, ContinuationMustBeIndentedMoreThanItsKey) {
  EXPECT_THAT(SectionOf("[s]\n  a = 1\n  b = 2\n    c = 3\n", "s"),
              UnorderedElementsAre(Pair("a", "1"), Pair("b", "2\nc = 3")));
}

TEST(ParseIni, AcceptsCrlfLineEndingsAndUtf8Bom) {
  EXPECT_THAT(SectionOf("\xEF\xBB\xBF[s]\r\na = 1\r\nb = 2\r\n  more\r\n", "s"),
              UnorderedElementsAre(Pair("a", "1"), Pair("b", "2\nmore")));
}

// ---------------------------------------------------------------------------
// ParseIni: interpolation.

TEST(ParseIni, ExpandsHere) {
  EXPECT_THAT(SectionOf("[s]\np = %(here)s/plugins\n", "s"),
              ElementsAre(Pair("p", "/etc/tracim/plugins")));
}

TEST(ParseIni, ExpandsKeysOfTheSameSectionEvenWhenDefinedLater) {
  EXPECT_THAT(
      SectionOf("[s]\nfull = %(base)s/x\nbase = %(root)s/b\nroot = /r\n", "s"),
      UnorderedElementsAre(Pair("full", "/r/b/x"), Pair("base", "/r/b"), Pair("root", "/r")));
}

TEST(ParseIni, ExpandsKeysFromDefaultAndTheSectionWins) {
  absl::StatusOr<IniFile> ini = ParseIni(
      "[DEFAULT]\nroot = /d\nonly_default = od\n[s]\nroot = /s\nv = %(root)s %(only_default)s\n"
      "[t]\nv = %(root)s\n",
      kHere);
  ASSERT_TRUE(ini.ok()) << ini.status();
  EXPECT_EQ(ini->sections.at("s").at("v"), "/s od");
  EXPECT_EQ(ini->sections.at("t").at("v"), "/d");
  EXPECT_THAT(ini->sections.at("DEFAULT"),
              UnorderedElementsAre(Pair("root", "/d"), Pair("only_default", "od")));
}

TEST(ParseIni, ReferencedDefaultValuesExpandInTheReadingSection) {
  // As ConfigParser: DEFAULT's "path" is interpolated with s's "name".
  absl::StatusOr<IniFile> ini =
      ParseIni("[DEFAULT]\nname = d\npath = /x/%(name)s\n[s]\nname = s\nv = %(path)s\n", kHere);
  ASSERT_TRUE(ini.ok()) << ini.status();
  EXPECT_EQ(ini->sections.at("s").at("v"), "/x/s");
  EXPECT_EQ(ini->sections.at("DEFAULT").at("path"), "/x/d");
}

TEST(ParseIni, AKeyNamedHereOverridesTheBuiltIn) {
  EXPECT_THAT(SectionOf("[s]\nhere = /elsewhere\nv = %(here)s\n", "s"),
              UnorderedElementsAre(Pair("here", "/elsewhere"), Pair("v", "/elsewhere")));
}

TEST(ParseIni, DoublePercentIsALiteralPercent) {
  EXPECT_THAT(SectionOf("[s]\nv = 100%% of %%(here)s\n", "s"),
              ElementsAre(Pair("v", "100% of %(here)s")));
}

TEST(ParseIni, ExpandsInsideContinuedValues) {
  EXPECT_THAT(SectionOf("[s]\nv = %(here)s/a\n  %(here)s/b\n", "s"),
              ElementsAre(Pair("v", "/etc/tracim/a\n/etc/tracim/b")));
}

TEST(ParseIni, UnknownInterpolationIsAnErrorNamingLineAndKey) {
  ExpectIniError("[DEFAULT]\n\n[app:main]\n# comment\n\nx = 1\nplugin.folder_path = %(nope)s\n",
                 "line 7: unknown interpolation %(nope)s in key 'plugin.folder_path'");
}

TEST(ParseIni, InterpolationIsCaseSensitive) {
  ExpectIniError("[s]\nv = %(HERE)s\n", "line 2: unknown interpolation %(HERE)s in key 'v'");
}

TEST(ParseIni, ErrorInAReferencedKeyNamesThatKeysLine) {
  ExpectIniError("[s]\nb = 1\nc = %(missing)s\na = %(c)s\n",
                 "line 3: unknown interpolation %(missing)s in key 'c'");
}

TEST(ParseIni, LonePercentIsAnError) {
  ExpectIniError(
      "[s]\nv = 100%\n",
      "line 2: '%' must be followed by '%' or '(' in key 'v' (write %% for a literal %)");
  ExpectIniError(
      "[s]\nv = p%ss\n",
      "line 2: '%' must be followed by '%' or '(' in key 'v' (write %% for a literal %)");
}

TEST(ParseIni, MalformedReferenceIsAnError) {
  ExpectIniError("[s]\nv = %(here)\n",
                 "line 2: bad interpolation '%(here)' in key 'v' (expected %(name)s)");
  ExpectIniError("[s]\nv = %(here\n",
                 "line 2: bad interpolation '%(here' in key 'v' (expected %(name)s)");
  ExpectIniError("[s]\nv = %()s\n",
                 "line 2: bad interpolation '%()s' in key 'v' (expected %(name)s)");
  ExpectIniError("[s]\nv = %(here)d\n",
                 "line 2: bad interpolation '%(here)d' in key 'v' (expected %(name)s)");
}

TEST(ParseIni, CircularReferencesAreAnError) {
  ExpectIniError("[s]\na = %(b)s\nb = %(a)s\n", "line 3: circular interpolation %(a)s in key 'b'");
  ExpectIniError("[s]\nself = x%(self)s\n",
                 "line 2: circular interpolation %(self)s in key 'self'");
}

TEST(ParseIni, ValuesBlownUpByReferencesAreRejected) {
  std::string text = "[s]\nk0 = xxxxxxxxxxxxxxxx\n";
  for (int i = 1; i <= 20; ++i)
    absl::StrAppend(&text, "k", i, " = %(k", i - 1, ")s%(k", i - 1, ")s\n");
  ExpectIniError(text, "line 19: key 'k17' is longer than 1048576 bytes after interpolation");
}

TEST(ParseIni, DeepReferenceChainsAreRejected) {
  std::string text = "[s]\nk0 = x\n";
  for (int i = 1; i <= 40; ++i) absl::StrAppend(&text, "k", i, " = %(k", i - 1, ")s\n");
  absl::StatusOr<IniFile> ini = ParseIni(text, kHere);
  // Expanded in file order, each key's chain is already cached: no error.
  ASSERT_TRUE(ini.ok()) << ini.status();
  EXPECT_EQ(ini->sections.at("s").at("k40"), "x");
  // Referenced before definition, the chain is walked in one go.
  std::string reversed = "[s]\n";
  for (int i = 40; i >= 1; --i) absl::StrAppend(&reversed, "k", i, " = %(k", i - 1, ")s\n");
  absl::StrAppend(&reversed, "k0 = x\n");
  ExpectIniError(reversed, "line 35: interpolation nested deeper than 32 levels in key 'k7'");
}

// ---------------------------------------------------------------------------
// ParseIni: syntax errors.

TEST(ParseIni, DuplicateKeyInOneSectionIsAnError) {
  ExpectIniError(
      "[app:main]\nbroker.listen = a:1\n# x\nbroker.listen = b:2\n",
      "line 4: duplicate key 'broker.listen' in section [app:main] (first set on line 2)");
}

TEST(ParseIni, SameKeyInTwoSectionsIsFine) {
  absl::StatusOr<IniFile> ini = ParseIni("[a]\nk = 1\n[b]\nk = 2\n", kHere);
  ASSERT_TRUE(ini.ok()) << ini.status();
  EXPECT_EQ(ini->sections.at("a").at("k"), "1");
  EXPECT_EQ(ini->sections.at("b").at("k"), "2");
}

TEST(ParseIni, DuplicateSectionIsAnError) {
  ExpectIniError("[a]\nk = 1\n[b]\n[a]\n", "line 4: duplicate section [a] (first on line 1)");
}

TEST(ParseIni, KeyBeforeAnySectionIsAnError) {
  ExpectIniError("# comment\nk = v\n",
                 "line 2: key 'k' before any [section] header (a file starts with one, e.g. "
                 "[app:main])");
}

TEST(ParseIni, LineWithoutDelimiterIsAnError) {
  ExpectIniError("[s]\njust words\n",
                 "line 2: expected [section], 'key = value' or 'key: value', got 'just words'");
}

TEST(ParseIni, MissingKeyIsAnError) {
  ExpectIniError("[s]\n = v\n", "line 2: missing key before '='");
  ExpectIniError("[s]\n: v\n", "line 2: missing key before ':'");
}

TEST(ParseIni, MalformedSectionHeadersAreErrors) {
  ExpectIniError("[app:main\n",
                 "line 1: unterminated section header '[app:main' (expected [name])");
  ExpectIniError("[ ]\n", "line 1: empty section name");
  ExpectIniError("[a] b\n", "line 1: unexpected text 'b' after section header");
}

TEST(ParseIni, ReportsTheFirstErrorInTheFile) {
  ExpectIniError("[s]\na = %(x)s\nb = %(y)s\n", "line 2: unknown interpolation %(x)s in key 'a'");
}

// ---------------------------------------------------------------------------
// ParseBrokerConfig: defaults and every key.

TEST(ParseBrokerConfig, EmptyFileGivesAllDefaults) {
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig("", kFile, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->file, fs::path(kFile));
  EXPECT_EQ(config->here, fs::path(kHere));
  EXPECT_EQ(config->plugin_folder, fs::path("/etc/tracim/plugins"));
  EXPECT_EQ(config->listen_host, "127.0.0.1");
  EXPECT_EQ(config->listen_port, 8080);
  EXPECT_EQ(config->state_dir, fs::path("/etc/tracim/var"));
  EXPECT_EQ(config->runtime_dir, std::nullopt);
  EXPECT_EQ(config->admin_password, std::nullopt);
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->plugin_start_timeout, absl::Seconds(10));
  EXPECT_EQ(config->plugin_shutdown_grace, absl::Seconds(3));
  EXPECT_EQ(config->plugin_runner, std::nullopt);
  EXPECT_THAT(config->plugin_settings, IsEmpty());
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, ReadsEveryKnownKey) {
  absl::StatusOr<BrokerConfig> config = AppMain(
      "plugin.folder_path = /opt/plugins\n"
      "broker.listen = localhost:9090\n"
      "broker.state_dir = /var/lib/tracim\n"
      "broker.runtime_dir = /run/tracim\n"
      "backend.admin_password = s3cret%%\n"
      "broker.log_level = debug\n"
      "broker.plugin_start_timeout_ms = 2500\n"
      "broker.plugin_shutdown_grace_ms = 750\n"
      "broker.plugin_runner = /usr/lib/tracim/tracim-plugin-runner\n"
      "plugin.hello_world.greeting = Hello\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_folder, fs::path("/opt/plugins"));
  EXPECT_EQ(config->listen_host, "localhost");
  EXPECT_EQ(config->listen_port, 9090);
  EXPECT_EQ(config->state_dir, fs::path("/var/lib/tracim"));
  EXPECT_EQ(config->runtime_dir, fs::path("/run/tracim"));
  EXPECT_EQ(config->admin_password, "s3cret%");
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->plugin_start_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(config->plugin_shutdown_grace, absl::Milliseconds(750));
  EXPECT_EQ(config->plugin_runner, fs::path("/usr/lib/tracim/tracim-plugin-runner"));
  EXPECT_THAT(config->plugin_settings,
              ElementsAre(Pair("hello_world", ElementsAre(Pair("greeting", "Hello")))));
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, ResolvesRelativePathsAgainstHere) {
  absl::StatusOr<BrokerConfig> config = AppMain(
      "plugin.folder_path = plugins.d\n"
      "broker.state_dir = ./state/../var2\n"
      "broker.runtime_dir = run\n"
      "broker.plugin_runner = bin/runner\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_folder, fs::path("/etc/tracim/plugins.d"));
  EXPECT_EQ(config->state_dir, fs::path("/etc/tracim/var2"));
  EXPECT_EQ(config->runtime_dir, fs::path("/etc/tracim/run"));
  EXPECT_EQ(config->plugin_runner, fs::path("/etc/tracim/bin/runner"));
}

TEST(ParseBrokerConfig, ExpandsHereInPaths) {
  absl::StatusOr<BrokerConfig> config = AppMain("plugin.folder_path = %(here)s/../plugins\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_folder, fs::path("/etc/plugins"));
}

TEST(ParseBrokerConfig, HereOfARelativeFileIsAbsolute) {
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig("", "conf/broker.ini", {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->file, fs::current_path() / "conf/broker.ini");
  EXPECT_EQ(config->here, fs::current_path() / "conf");
  EXPECT_EQ(config->plugin_folder, fs::current_path() / "conf/plugins");
}

TEST(ParseBrokerConfig, EmptyRequiredPathIsAnError) {
  ExpectConfigError(
      "plugin.folder_path =\n",
      "plugin.folder_path: empty path (expected a path, relative to the config file)");
  ExpectConfigError("broker.state_dir =\n",
                    "broker.state_dir: empty path (expected a path, relative to the config file)");
}

TEST(ParseBrokerConfig, EmptyOptionalValuesMeanUnset) {
  absl::StatusOr<BrokerConfig> config =
      AppMain("broker.runtime_dir =\nbackend.admin_password =\nbroker.plugin_runner =\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->runtime_dir, std::nullopt);
  EXPECT_EQ(config->admin_password, std::nullopt);
  EXPECT_EQ(config->plugin_runner, std::nullopt);
}

struct ListenCase {
  std::string value;
  std::string host;
  uint16_t port;
};

TEST(ParseBrokerConfig, AcceptsListenAddresses) {
  const ListenCase cases[] = {
      {"0.0.0.0:80", "0.0.0.0", 80},
      {"127.0.0.1:0", "127.0.0.1", 0},
      {"tracim.example.org:65535", "tracim.example.org", 65535},
      {"my-host_1:443", "my-host_1", 443},
      {"[::1]:8080", "::1", 8080},
      {"[::]:1", "::", 1},
      {"[fe80::1:2]:00080", "fe80::1:2", 80},
  };
  for (const ListenCase& c : cases) {
    absl::StatusOr<BrokerConfig> config = AppMain("broker.listen = " + c.value + "\n");
    ASSERT_TRUE(config.ok()) << c.value << ": " << config.status();
    EXPECT_EQ(config->listen_host, c.host) << c.value;
    EXPECT_EQ(config->listen_port, c.port) << c.value;
  }
}

TEST(ParseBrokerConfig, RejectsBadListenAddressesNamingTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"127.0.0.1:80a80", "broker.listen: invalid port '80a80' (expected host:port, port 0-65535)"},
      {"127.0.0.1:65536", "broker.listen: invalid port '65536' (expected host:port, port 0-65535)"},
      {"127.0.0.1:-1", "broker.listen: invalid port '-1' (expected host:port, port 0-65535)"},
      {"127.0.0.1:", "broker.listen: invalid port '' (expected host:port, port 0-65535)"},
      {"localhost",
       "broker.listen: missing port in 'localhost' (expected host:port, port 0-65535)"},
      {":8080", "broker.listen: missing host in ':8080' (expected host:port, port 0-65535)"},
      {"", "broker.listen: empty value (expected host:port, port 0-65535)"},
      {"300.1.1.1:80",
       "broker.listen: invalid IPv4 address '300.1.1.1' (expected host:port, port 0-65535)"},
      {"a b:80", "broker.listen: invalid host 'a b' (expected host:port, port 0-65535)"},
      {"::1:8080",
       "broker.listen: IPv6 address must be in brackets in '::1:8080' (expected [IPv6 "
       "address]:port)"},
      {"[::1]", "broker.listen: missing port in '[::1]' (expected [IPv6 address]:port)"},
      {"[::1:8080",
       "broker.listen: unterminated '[' in '[::1:8080' (expected [IPv6 address]:port)"},
      {"[::1]8080",
       "broker.listen: unexpected text after ']' in '[::1]8080' (expected [IPv6 address]:port)"},
      {"[::g]:80", "broker.listen: invalid IPv6 address '::g' (expected [IPv6 address]:port)"},
      {"[::1]:x", "broker.listen: invalid port 'x' (expected host:port, port 0-65535)"},
  };
  for (const auto& [value, message] : cases) {
    SCOPED_TRACE(value);
    ExpectConfigError("broker.listen = " + value + "\n", message);
  }
}

TEST(ParseBrokerConfig, LogLevelIsCaseInsensitiveAndAcceptsWarning) {
  for (const auto& [value, level] : std::map<std::string, std::string>{{"trace", "trace"},
                                                                       {"DEBUG", "debug"},
                                                                       {"Info", "info"},
                                                                       {"warn", "warn"},
                                                                       {"WARNING", "warn"},
                                                                       {"error", "error"},
                                                                       {"critical", "critical"},
                                                                       {"off", "off"}}) {
    absl::StatusOr<BrokerConfig> config = AppMain("broker.log_level = " + value + "\n");
    ASSERT_TRUE(config.ok()) << value << ": " << config.status();
    EXPECT_EQ(config->log_level, level) << value;
  }
}

TEST(ParseBrokerConfig, RejectsUnknownLogLevel) {
  ExpectConfigError("broker.log_level = verbose\n",
                    "broker.log_level: invalid level 'verbose' (expected trace, debug, info, warn, "
                    "error, critical or off)");
}

TEST(ParseBrokerConfig, AcceptsTimeoutBounds) {
  absl::StatusOr<BrokerConfig> config =
      AppMain("broker.plugin_start_timeout_ms = 3600000\nbroker.plugin_shutdown_grace_ms = 1\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_start_timeout, absl::Hours(1));
  EXPECT_EQ(config->plugin_shutdown_grace, absl::Milliseconds(1));
}

TEST(ParseBrokerConfig, RejectsTimeoutsThatAreNotPositiveMillisecondsUpToAnHour) {
  for (const std::string key :
       {"broker.plugin_start_timeout_ms", "broker.plugin_shutdown_grace_ms"}) {
    for (const std::string value : {"0", "-5", "10s", "1.5", "3600001", "99999999999", "+5", ""}) {
      SCOPED_TRACE(key + " = " + value);
      ExpectConfigError(key + " = " + value + "\n",
                        key + ": invalid value '" + value +
                            "' (expected an integer number of milliseconds from 1 to 3600000)");
    }
  }
}

TEST(ParseBrokerConfig, EventDeliveryKeysHaveDefaultsAndBounds) {
  absl::StatusOr<BrokerConfig> defaults = AppMain("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->event_queue_size, 10000u);
  EXPECT_EQ(defaults->event_ack_timeout, absl::Seconds(30));
  EXPECT_FALSE(defaults->backend_token.has_value());

  absl::StatusOr<BrokerConfig> config = AppMain(
      "broker.event_queue_size = 10000000\nbroker.event_ack_timeout_ms = 250\n"
      "broker.backend_token = 0123456789abcdef\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->event_queue_size, 10000000u);
  EXPECT_EQ(config->event_ack_timeout, absl::Milliseconds(250));
  EXPECT_EQ(config->backend_token, "0123456789abcdef");

  for (const std::string value : {"0", "-1", "10000001", "1e3", "many", ""}) {
    SCOPED_TRACE(value);
    ExpectConfigError("broker.event_queue_size = " + value + "\n",
                      "broker.event_queue_size: invalid value '" + value +
                          "' (expected an integer from 1 to 10000000)");
  }
  ExpectConfigError("broker.event_ack_timeout_ms = 0\n",
                    "broker.event_ack_timeout_ms: invalid value '0' (expected an integer number of "
                    "milliseconds from 1 to 3600000)");
  ExpectConfigError("broker.backend_token = short\n",
                    "broker.backend_token: too short (at least 16 characters)");
}

TEST(ParseBrokerConfig, RestartAndHealthKeysHaveDefaultsAndBounds) {
  absl::StatusOr<BrokerConfig> defaults = AppMain("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->restart_backoff_initial, absl::Milliseconds(100));
  EXPECT_EQ(defaults->restart_backoff_max, absl::Seconds(30));
  EXPECT_EQ(defaults->restart_max_failures, 5);
  EXPECT_EQ(defaults->restart_failure_window, absl::Minutes(5));
  EXPECT_EQ(defaults->health_interval, absl::Seconds(5));
  EXPECT_EQ(defaults->health_timeout, absl::Seconds(2));
  EXPECT_EQ(defaults->health_failures, 3);

  absl::StatusOr<BrokerConfig> config = AppMain(
      "broker.restart_backoff_initial_ms = 10\nbroker.restart_backoff_max_ms = 20\n"
      "broker.restart_max_failures = 0\nbroker.restart_failure_window_ms = 3600000\n"
      "broker.health_interval_ms = 1\nbroker.health_timeout_ms = 2\n"
      "broker.health_failures = 100\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->restart_backoff_initial, absl::Milliseconds(10));
  EXPECT_EQ(config->restart_backoff_max, absl::Milliseconds(20));
  EXPECT_EQ(config->restart_max_failures, 0);
  EXPECT_EQ(config->restart_failure_window, absl::Hours(1));
  EXPECT_EQ(config->health_interval, absl::Milliseconds(1));
  EXPECT_EQ(config->health_timeout, absl::Milliseconds(2));
  EXPECT_EQ(config->health_failures, 100);
  EXPECT_THAT(config->warnings, IsEmpty());

  ExpectConfigError("broker.restart_max_failures = 1001\n",
                    "broker.restart_max_failures: invalid value '1001' (expected an integer from 0 "
                    "to 1000)");
  ExpectConfigError(
      "broker.health_failures = 0\n",
      "broker.health_failures: invalid value '0' (expected an integer from 1 to 100)");
  ExpectConfigError("broker.restart_backoff_initial_ms = 0\n",
                    "broker.restart_backoff_initial_ms: invalid value '0' (expected an integer "
                    "number of milliseconds from 1 to 3600000)");
  ExpectConfigError("broker.health_timeout_ms = 2s\n",
                    "broker.health_timeout_ms: invalid value '2s' (expected an integer number of "
                    "milliseconds from 1 to 3600000)");
}

TEST(ParseBrokerConfig, PluginLogKeysHaveDefaultsBoundsAndOverrides) {
  absl::StatusOr<BrokerConfig> defaults = AppMain("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->plugin_log_rate, 200u);
  EXPECT_EQ(defaults->plugin_log_burst, 1000u);

  // 0 turns the limit off; both bounds are accepted.
  absl::StatusOr<BrokerConfig> config =
      AppMain("broker.plugin_log_rate = 0\nbroker.plugin_log_burst = 1000000\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_log_rate, 0u);
  EXPECT_EQ(config->plugin_log_burst, 1000000u);
  config = AppMain("broker.plugin_log_rate = 1000000\nbroker.plugin_log_burst = 1\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_log_rate, 1000000u);
  EXPECT_EQ(config->plugin_log_burst, 1u);

  for (const std::string value : {"-1", "1000001", "1e3", "2.5", "fast", "", "99999999999"}) {
    SCOPED_TRACE(value);
    ExpectConfigError("broker.plugin_log_rate = " + value + "\n",
                      "broker.plugin_log_rate: invalid value '" + value +
                          "' (expected an integer from 0 to 1000000)");
  }
  for (const std::string value : {"0", "-1", "1000001", "many", ""}) {
    SCOPED_TRACE(value);
    ExpectConfigError("broker.plugin_log_burst = " + value + "\n",
                      "broker.plugin_log_burst: invalid value '" + value +
                          "' (expected an integer from 1 to 1000000)");
  }

  Environment env;
  env.vars = {{"TRACIM_BROKER__PLUGIN_LOG_RATE", "50"}, {"TRACIM_BROKER__PLUGIN_LOG_BURST", "7"}};
  config = AppMain("broker.plugin_log_rate = 10\nbroker.plugin_log_burst = 20\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_log_rate, 50u);
  EXPECT_EQ(config->plugin_log_burst, 7u);
  EXPECT_THAT(config->warnings, IsEmpty());
  env.vars = {{"TRACIM_BROKER__PLUGIN_LOG_BURST", "0"}};
  ExpectConfigError("",
                    "broker.plugin_log_burst (from TRACIM_BROKER__PLUGIN_LOG_BURST): invalid value "
                    "'0' (expected an integer from 1 to 1000000)",
                    env);
}

TEST(ParseBrokerConfig, IdlePollHasADefaultBoundsAndAnOverride) {
  absl::StatusOr<BrokerConfig> defaults = AppMain("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->idle_poll, absl::Microseconds(200));

  // 0 turns polling off; both bounds are accepted.
  absl::StatusOr<BrokerConfig> config = AppMain("broker.idle_poll_us = 0\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->idle_poll, absl::ZeroDuration());
  config = AppMain("broker.idle_poll_us = 10000\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->idle_poll, absl::Milliseconds(10));

  for (const std::string value : {"-1", "10001", "200us", "0.5", "fast", ""}) {
    SCOPED_TRACE(value);
    ExpectConfigError(
        "broker.idle_poll_us = " + value + "\n",
        "broker.idle_poll_us: invalid value '" + value + "' (expected an integer from 0 to 10000)");
  }

  Environment env;
  env.vars = {{"TRACIM_BROKER__IDLE_POLL_US", "50"}};
  config = AppMain("broker.idle_poll_us = 300\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->idle_poll, absl::Microseconds(50));
  env.vars = {{"TRACIM_BROKER__IDLE_POLL_US", "20000"}};
  ExpectConfigError("",
                    "broker.idle_poll_us (from TRACIM_BROKER__IDLE_POLL_US): invalid value "
                    "'20000' (expected an integer from 0 to 10000)",
                    env);
}

TEST(ParseBrokerConfig, RouteKeysHaveDefaultsAndBounds) {
  absl::StatusOr<BrokerConfig> defaults = AppMain("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->max_body_bytes, uint64_t{1} << 30);
  EXPECT_EQ(defaults->route_timeout, absl::Seconds(30));

  absl::StatusOr<BrokerConfig> config =
      AppMain("broker.max_body_bytes = 1099511627776\nbroker.route_timeout_ms = 250\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_body_bytes, uint64_t{1} << 40);
  EXPECT_EQ(config->route_timeout, absl::Milliseconds(250));

  for (const std::string value : {"0", "-1", "1099511627777", "1e9", "1G", ""}) {
    SCOPED_TRACE(value);
    ExpectConfigError("broker.max_body_bytes = " + value + "\n",
                      "broker.max_body_bytes: invalid value '" + value +
                          "' (expected an integer number of bytes from 1 to 1099511627776)");
  }
  ExpectConfigError("broker.route_timeout_ms = 3600001\n",
                    "broker.route_timeout_ms: invalid value '3600001' (expected an integer number "
                    "of milliseconds from 1 to 3600000)");
}

// ---------------------------------------------------------------------------
// ParseBrokerConfig: plugin settings, sections, warnings.

TEST(ParseBrokerConfig, GroupsPluginSettingsByName) {
  absl::StatusOr<BrokerConfig> config = AppMain(
      "plugin.hello_world.greeting = Hi\n"
      "plugin.hello_world.smtp.host = mail\n"
      "plugin.other2.Key = %(here)s\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(
      config->plugin_settings,
      UnorderedElementsAre(Pair("hello_world", UnorderedElementsAre(Pair("greeting", "Hi"),
                                                                    Pair("smtp.host", "mail"))),
                           Pair("other2", ElementsAre(Pair("Key", "/etc/tracim")))));
}

TEST(ParseBrokerConfig, RejectsInvalidPluginNamesAndEmptySettings) {
  ExpectConfigError("plugin.Hello.greeting = x\n",
                    "plugin.Hello.greeting: invalid plugin name 'Hello' (expected [a-z0-9_]+)");
  ExpectConfigError("plugin..greeting = x\n",
                    "plugin..greeting: invalid plugin name '' (expected [a-z0-9_]+)");
  ExpectConfigError("plugin.hello-world.greeting = x\n",
                    "plugin.hello-world.greeting: invalid plugin name 'hello-world' (expected "
                    "[a-z0-9_]+)");
  ExpectConfigError("plugin.hello. = x\n",
                    "plugin.hello.: missing setting name (expected plugin.<name>.<setting>)");
}

TEST(ParseBrokerConfig, WarnsAboutUnknownKeysInAppMain) {
  absl::StatusOr<BrokerConfig> config =
      AppMain("broker.lisen = 1.2.3.4:5\nplugin.folder = x\nsqlalchemy.url = sqlite://\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_port, 8080);
  EXPECT_THAT(config->warnings,
              ElementsAre("unknown key 'broker.lisen' in /etc/tracim/broker.ini [app:main] "
                          "(ignored)",
                          "unknown key 'plugin.folder' in /etc/tracim/broker.ini [app:main] "
                          "(ignored)",
                          "unknown key 'sqlalchemy.url' in /etc/tracim/broker.ini [app:main] "
                          "(ignored)"));
}

TEST(ParseBrokerConfig, IgnoresOtherSections) {
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig(
      "[server:main]\nbroker.listen = 1.1.1.1:1\nwhatever = x\n[app:main]\n"
      "broker.log_level = error\n[loggers]\nkeys = root\n",
      kFile, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_host, "127.0.0.1");
  EXPECT_EQ(config->log_level, "error");
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, WarnsWhenOtherSectionsExistButNoAppMain) {
  absl::StatusOr<BrokerConfig> config =
      ParseBrokerConfig("[app:mian]\nbroker.listen = 1.1.1.1:1\n", kFile, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_host, "127.0.0.1");
  EXPECT_THAT(config->warnings,
              ElementsAre("no [app:main] section in /etc/tracim/broker.ini (other sections are "
                          "ignored; using defaults)"));
}

TEST(ParseBrokerConfig, DefaultSectionKeysApplyAndAppMainWins) {
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig(
      "[DEFAULT]\nbroker.log_level = debug\nbroker.listen = 1.1.1.1:1\ndebug = false\n"
      "[app:main]\nbroker.listen = 2.2.2.2:2\n",
      kFile, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->listen_host, "2.2.2.2");
  // [DEFAULT] is shared with other sections: its unknown keys are not reported.
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, SyntaxErrorsNameTheFileAndLine) {
  absl::StatusOr<BrokerConfig> config =
      ParseBrokerConfig("[app:main]\nplugin.folder_path = %(nope)s\n", kFile, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "/etc/tracim/broker.ini: line 2: unknown interpolation %(nope)s in key "
            "'plugin.folder_path'");
}

// ---------------------------------------------------------------------------
// Environment overrides.

TEST(EnvVarForKey, ReplacesDotsWithDoubleUnderscoreAndUpperCases) {
  EXPECT_EQ(EnvVarForKey("plugin.folder_path"), "TRACIM_PLUGIN__FOLDER_PATH");
  EXPECT_EQ(EnvVarForKey("broker.listen"), "TRACIM_BROKER__LISTEN");
  EXPECT_EQ(EnvVarForKey("plugin.hello_world.greeting"), "TRACIM_PLUGIN__HELLO_WORLD__GREETING");
}

TEST(ParseBrokerConfig, EnvironmentOverridesEveryKnownKeyAndWinsOverTheFile) {
  Environment env;
  env.vars = {
      {"TRACIM_PLUGIN__FOLDER_PATH", "%(here)s/env_plugins"},
      {"TRACIM_BROKER__LISTEN", "[::1]:7000"},
      {"TRACIM_BROKER__STATE_DIR", "env_state"},
      {"TRACIM_BROKER__RUNTIME_DIR", "/run/env"},
      {"TRACIM_BACKEND__ADMIN_PASSWORD", "p%ss %(x)s"},
      {"TRACIM_BROKER__LOG_LEVEL", "trace"},
      {"TRACIM_BROKER__PLUGIN_START_TIMEOUT_MS", "42"},
      {"TRACIM_BROKER__PLUGIN_SHUTDOWN_GRACE_MS", "43"},
      {"TRACIM_BROKER__PLUGIN_RUNNER", "/bin/env-runner"},
  };
  absl::StatusOr<BrokerConfig> config = AppMain(
      "plugin.folder_path = /file\nbroker.listen = 1.1.1.1:1\nbroker.state_dir = /file\n"
      "broker.runtime_dir = /file\nbackend.admin_password = file\nbroker.log_level = error\n"
      "broker.plugin_start_timeout_ms = 1\nbroker.plugin_shutdown_grace_ms = 1\n"
      "broker.plugin_runner = /file\n",
      env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->plugin_folder, fs::path("/etc/tracim/env_plugins"));
  EXPECT_EQ(config->listen_host, "::1");
  EXPECT_EQ(config->listen_port, 7000);
  EXPECT_EQ(config->state_dir, fs::path("/etc/tracim/env_state"));
  EXPECT_EQ(config->runtime_dir, fs::path("/run/env"));
  // Only %(here)s is expanded in environment values; other '%' stay as is.
  EXPECT_EQ(config->admin_password, "p%ss %(x)s");
  EXPECT_EQ(config->log_level, "trace");
  EXPECT_EQ(config->plugin_start_timeout, absl::Milliseconds(42));
  EXPECT_EQ(config->plugin_shutdown_grace, absl::Milliseconds(43));
  EXPECT_EQ(config->plugin_runner, fs::path("/bin/env-runner"));
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, EnvironmentAppliesWithoutAFileValue) {
  Environment env;
  env.vars = {{"TRACIM_BROKER__LISTEN", "0.0.0.0:1234"}};
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig("", kFile, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_host, "0.0.0.0");
  EXPECT_EQ(config->listen_port, 1234);
}

TEST(ParseBrokerConfig, EmptyEnvironmentValueUnsetsAnOptionalKey) {
  Environment env;
  env.vars = {{"TRACIM_BROKER__RUNTIME_DIR", ""}};
  absl::StatusOr<BrokerConfig> config = AppMain("broker.runtime_dir = /run/x\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->runtime_dir, std::nullopt);
}

TEST(ParseBrokerConfig, EnvironmentReplacesABadFileValue) {
  Environment env;
  env.vars = {{"TRACIM_BROKER__LISTEN", "127.0.0.1:1"}};
  absl::StatusOr<BrokerConfig> config = AppMain("broker.listen = nonsense\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_port, 1);
}

TEST(ParseBrokerConfig, BadEnvironmentValueNamesTheVariable) {
  Environment env;
  env.vars = {{"TRACIM_BROKER__LISTEN", "127.0.0.1:80a80"}};
  ExpectConfigError("",
                    "broker.listen (from TRACIM_BROKER__LISTEN): invalid port '80a80' "
                    "(expected host:port, port 0-65535)",
                    env);
  env.vars = {{"TRACIM_BROKER__PLUGIN_START_TIMEOUT_MS", "0"}};
  ExpectConfigError("",
                    "broker.plugin_start_timeout_ms (from TRACIM_BROKER__PLUGIN_START_TIMEOUT_MS): "
                    "invalid value '0' (expected an integer number of milliseconds from 1 to "
                    "3600000)",
                    env);
  env.vars = {{"TRACIM_PLUGIN__HELLO-WORLD__X", "1"}};
  ExpectConfigError("",
                    "plugin.hello-world.x (from TRACIM_PLUGIN__HELLO-WORLD__X): invalid plugin "
                    "name 'hello-world' (expected [a-z0-9_]+)",
                    env);
}

TEST(ParseBrokerConfig, EnvironmentSetsPluginSettingsInLowerCase) {
  Environment env;
  env.vars = {
      {"TRACIM_PLUGIN__HELLO_WORLD__GREETING", "hi from %(here)s"},
      {"TRACIM_PLUGIN__HELLO_WORLD__SMTP__HOST", "mail"},
      {"TRACIM_PLUGIN__OTHER__KEY", "env"},
  };
  absl::StatusOr<BrokerConfig> config =
      AppMain("plugin.hello_world.greeting = from file\nplugin.other.keep = file\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->plugin_settings,
              UnorderedElementsAre(
                  Pair("hello_world", UnorderedElementsAre(Pair("greeting", "hi from /etc/tracim"),
                                                           Pair("smtp.host", "mail"))),
                  Pair("other", UnorderedElementsAre(Pair("keep", "file"), Pair("key", "env")))));
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, IgnoresVariablesThatAreNotOverrides) {
  Environment env;
  env.vars = {
      {"TRACIM_PLUGIN_SECRET", "x"},
      {"TRACIM_BROKER_LISTEN", "not an override: single underscore"},
      {"HOME", "/root"},
      {"tracim_broker__listen", "lower-case prefix"},
      {"XTRACIM_BROKER__LISTEN", "prefix not at the start"},
  };
  absl::StatusOr<BrokerConfig> config = ParseBrokerConfig("", kFile, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_port, 8080);
  EXPECT_THAT(config->warnings, IsEmpty());
}

TEST(ParseBrokerConfig, WarnsAboutUnknownOverridesNamingTheVariable) {
  Environment env;
  env.vars = {
      {"TRACIM_BROKER__LISTN", "1.1.1.1:1"},
      {"TRACIM_SQLALCHEMY__URL", "sqlite://"},
  };
  absl::StatusOr<BrokerConfig> config = AppMain("nope = 1\n", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_port, 8080);
  EXPECT_THAT(config->warnings,
              ElementsAre("unknown key 'nope' in /etc/tracim/broker.ini [app:main] (ignored)",
                          "unknown environment override TRACIM_BROKER__LISTN (no key "
                          "'broker.listn'; ignored)",
                          "unknown environment override TRACIM_SQLALCHEMY__URL (no key "
                          "'sqlalchemy.url'; ignored)"));
}

TEST(EnvironmentFromProcess, ReadsTheProcessEnvironment) {
  const std::string name = absl::StrCat("TRACIM_CONFIG_TEST_", getpid());
  ASSERT_EQ(setenv(name.c_str(), "a=b", 1), 0);
  const Environment env = Environment::FromProcess();
  unsetenv(name.c_str());
  ASSERT_EQ(env.vars.count(name), 1u);
  EXPECT_EQ(env.vars.at(name), "a=b");
}

// ---------------------------------------------------------------------------
// LoadBrokerConfig: real files.

class LoadBrokerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "broker_config_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path Write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

TEST_F(LoadBrokerConfigTest, ReadsTheFileWithHereAsItsFolder) {
  const fs::path file = Write("broker.ini", "[app:main]\nbroker.state_dir = %(here)s/st\n");
  Environment env;
  env.vars = {{"TRACIM_BROKER__LOG_LEVEL", "warn"}};
  absl::StatusOr<BrokerConfig> config = LoadBrokerConfig(file, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->file, file);
  EXPECT_EQ(config->here, dir_);
  EXPECT_EQ(config->state_dir, dir_ / "st");
  EXPECT_EQ(config->plugin_folder, dir_ / "plugins");
  EXPECT_EQ(config->log_level, "warn");
}

TEST_F(LoadBrokerConfigTest, MissingFileIsNotFound) {
  const fs::path file = dir_ / "absent.ini";
  absl::StatusOr<BrokerConfig> config = LoadBrokerConfig(file, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(),
            "cannot read config file '" + file.string() + "': No such file or directory");
}

TEST_F(LoadBrokerConfigTest, DirectoryIsAFailedPrecondition) {
  absl::StatusOr<BrokerConfig> config = LoadBrokerConfig(dir_, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(config.status().message(),
            "cannot read config file '" + dir_.string() + "': Is a directory");
}

TEST_F(LoadBrokerConfigTest, UnreadableFileIsPermissionDenied) {
  const fs::path file = Write("secret.ini", "[app:main]\n");
  ASSERT_EQ(chmod(file.c_str(), 0), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  // Root reads anything: check from a child that drops to nobody.
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(2);
    const absl::StatusOr<BrokerConfig> config = LoadBrokerConfig(file, {});
    const std::string report =
        absl::StrCat(static_cast<int>(config.status().code()), " ", config.status().message());
    const bool written =
        write(pipe_fds[1], report.data(), report.size()) == static_cast<ssize_t>(report.size());
    _exit(written ? 0 : 3);
  }
  close(pipe_fds[1]);
  std::string report;
  char buffer[512];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) report.append(buffer, n);
  close(pipe_fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child status " << wstatus;
  EXPECT_EQ(report,
            absl::StrCat(static_cast<int>(absl::StatusCode::kPermissionDenied),
                         " cannot read config file '", file.string(), "': Permission denied"));
}

TEST_F(LoadBrokerConfigTest, SyntaxErrorNamesTheFile) {
  const fs::path file =
      Write("broker.ini", "[app:main]\nbroker.listen = a:1\nbroker.listen = b:2\n");
  absl::StatusOr<BrokerConfig> config = LoadBrokerConfig(file, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            file.string() +
                ": line 3: duplicate key 'broker.listen' in section [app:main] (first set on "
                "line 2)");
}

}  // namespace
}  // namespace tracim::broker
