#include "broker/app/runtime_dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tracim::broker {
namespace {

absl::Status MakePrivate(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("broker.runtime_dir: cannot create '", dir.string(), "': ", ec.message()));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("broker.runtime_dir: '", dir.string(), "' is not a directory"));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "broker.runtime_dir: '", dir.string(), "' belongs to another user (uid ", st.st_uid, ")"));
  }
  if ((st.st_mode & 0777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "broker.runtime_dir: cannot make '", dir.string(), "' private: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RuntimeDir> RuntimeDir::Prepare(
    const std::optional<std::filesystem::path>& configured,
    const std::optional<std::string>& systemd_dir) {
  if (configured) {
    if (auto s = MakePrivate(*configured); !s.ok()) return s;
    return RuntimeDir(*configured, false);
  }
  if (systemd_dir && !systemd_dir->empty()) {
    std::filesystem::path dir = std::string(*absl::StrSplit(*systemd_dir, ':').begin());
    if (auto s = MakePrivate(dir); !s.ok()) return s;
    return RuntimeDir(dir, false);
  }
  const char* tmp = getenv("TMPDIR");
  std::string templ =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/tracim-broker-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create a runtime folder '", templ, "': ", strerror(errno)));
  }
  return RuntimeDir(templ, true);
}

RuntimeDir::RuntimeDir(RuntimeDir&& other) noexcept
    : path_(std::move(other.path_)), temporary_(other.temporary_) {
  other.temporary_ = false;
}

RuntimeDir::~RuntimeDir() {
  if (!temporary_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace tracim::broker
