#include "plugin_runner/runner_options.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tracim::runner {
namespace {

absl::StatusOr<uint64_t> ParseCount(const std::string& option, const std::string& value) {
  uint64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": expected a positive integer, got '", value, "'"));
  }
  return n;
}

}  // namespace

absl::StatusOr<RunnerOptions> ParseRunnerOptions(const std::vector<std::string>& args) {
  RunnerOptions o;
  size_t i = 0;
  auto value = [&](const std::string& option) -> absl::StatusOr<std::string> {
    if (i + 1 >= args.size()) return absl::InvalidArgumentError(option + ": missing value");
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      o.command.assign(args.begin() + i + 1, args.end());
      if (o.command.empty()) return absl::InvalidArgumentError("--: missing command");
      break;
    }
    static constexpr const char* kKnown[] = {
        "--parent-pid", "--dir",        "--library",       "--user",         "--group",
        "--rlimit-as",  "--rlimit-cpu", "--rlimit-nofile", "--rlimit-nproc", "--report-fd"};
    if (std::find(std::begin(kKnown), std::end(kKnown), a) == std::end(kKnown)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", a, "'"));
    }
    auto v = value(a);
    if (!v.ok()) return v.status();
    if (a == "--parent-pid") {
      auto n = ParseCount(a, *v);
      if (!n.ok()) return n.status();
      if (*n > static_cast<uint64_t>(std::numeric_limits<pid_t>::max())) {
        return absl::InvalidArgumentError(absl::StrCat(a, ": ", *v, " is not a process id"));
      }
      o.parent_pid = static_cast<pid_t>(*n);
    } else if (a == "--report-fd") {
      auto n = ParseCount(a, *v);
      if (!n.ok()) return n.status();
      if (*n < 3 || *n > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(a, ": ", *v, " is not a descriptor above stderr"));
      }
      o.report_fd = static_cast<int>(*n);
    } else if (a == "--dir") {
      o.dir = *v;
    } else if (a == "--library") {
      o.library = *v;
    } else if (a == "--user") {
      o.user = *v;
    } else if (a == "--group") {
      o.group = *v;
    } else if (a == "--rlimit-as" || a == "--rlimit-cpu" || a == "--rlimit-nofile" ||
               a == "--rlimit-nproc") {
      auto n = ParseCount(a, *v);
      if (!n.ok()) return n.status();
      (a == "--rlimit-as"       ? o.rlimit_as
       : a == "--rlimit-cpu"    ? o.rlimit_cpu
       : a == "--rlimit-nofile" ? o.rlimit_nofile
                                : o.rlimit_nproc) = *n;
    }
  }
  if (o.parent_pid == 0) return absl::InvalidArgumentError("--parent-pid is required");
  if (o.dir.empty()) return absl::InvalidArgumentError("--dir is required");
  if (o.library.empty() == o.command.empty()) {
    return absl::InvalidArgumentError("exactly one of --library or -- COMMAND is required");
  }
  return o;
}

std::vector<std::string> FormatRunnerOptions(const RunnerOptions& o) {
  std::vector<std::string> args = {"--parent-pid", std::to_string(o.parent_pid), "--dir", o.dir};
  auto add = [&](const char* name, const std::optional<uint64_t>& v) {
    if (v) args.insert(args.end(), {name, std::to_string(*v)});
  };
  add("--rlimit-as", o.rlimit_as);
  add("--rlimit-cpu", o.rlimit_cpu);
  add("--rlimit-nofile", o.rlimit_nofile);
  add("--rlimit-nproc", o.rlimit_nproc);
  if (o.user) args.insert(args.end(), {"--user", *o.user});
  if (o.group) args.insert(args.end(), {"--group", *o.group});
  if (o.report_fd) args.insert(args.end(), {"--report-fd", std::to_string(*o.report_fd)});
  if (!o.library.empty()) {
    args.insert(args.end(), {"--library", o.library});
  } else {
    args.push_back("--");
    args.insert(args.end(), o.command.begin(), o.command.end());
  }
  return args;
}

}  // namespace tracim::runner
