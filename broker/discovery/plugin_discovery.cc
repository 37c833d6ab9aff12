// Scanning plugin.folder_path. Every error about one plugin folder becomes a
// DiscoveryProblem so that one broken plugin never hides the others; only the
// scanned folder itself can fail the whole call.
#include "broker/discovery/plugin_discovery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/common/status_macros.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;

// Chooses the code for an error about the scanned folder: the operator fixes
// a missing folder or a permission differently from anything else.
absl::Status FolderError(const fs::path& folder, const std::error_code& ec) {
  const std::string prefix =
      absl::StrCat("plugin folder '", folder.string(), "' (plugin.folder_path)");
  if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
    return absl::NotFoundError(absl::StrCat(prefix, " does not exist"));
  }
  if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
    return absl::PermissionDeniedError(absl::StrCat(prefix, " is not readable: ", ec.message()));
  }
  return absl::FailedPreconditionError(absl::StrCat(prefix, " cannot be read: ", ec.message()));
}

bool IsValidPluginName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c != '_' && !absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// Reads plugin.json with plain POSIX calls: we want errno for the message,
// a size cap, and O_NONBLOCK so that a FIFO named plugin.json cannot hang
// the broker (fstat then rejects it as not a regular file).
absl::StatusOr<std::string> ReadManifestFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) return absl::NotFoundError("missing plugin.json");
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read plugin.json: ", std::generic_category().message(error)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read plugin.json: ", std::generic_category().message(errno)));
  }
  if (!S_ISREG(st.st_mode))
    return absl::FailedPreconditionError("plugin.json is not a regular file");
  if (static_cast<uintmax_t>(st.st_size) > kMaxManifestBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("plugin.json is larger than ", kMaxManifestBytes, " bytes"));
  }

  std::string text;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read plugin.json: ", std::generic_category().message(errno)));
    }
    text.append(buffer, static_cast<size_t>(n));
    // The file may grow between fstat and read.
    if (text.size() > kMaxManifestBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat("plugin.json is larger than ", kMaxManifestBytes, " bytes"));
    }
  }
  return text;
}

// Examines one prefixed directory: a manifest or the reason there is none.
void ExaminePluginFolder(const fs::path& plugin_folder, const std::string& name,
                         DiscoveryResult& result) {
  if (name.empty()) {
    result.problems.push_back({name, plugin_folder,
                               absl::StrCat("plugin name is empty: the folder name must continue "
                                            "after '",
                                            kPluginFolderPrefix, "'")});
    return;
  }
  if (!IsValidPluginName(name)) {
    result.problems.push_back(
        {name, plugin_folder,
         absl::StrCat("invalid plugin name '", name, "': must match [a-z0-9_]+")});
    return;
  }
  const fs::path manifest_path = plugin_folder / kManifestFileName;
  absl::StatusOr<std::string> text = ReadManifestFile(manifest_path);
  if (!text.ok()) {
    // A missing file is about the folder; every other problem is about the file.
    const bool missing = absl::IsNotFound(text.status());
    result.problems.push_back(
        {name, missing ? plugin_folder : manifest_path, std::string(text.status().message())});
    return;
  }
  absl::StatusOr<PluginManifest> manifest = ParsePluginManifest(*text, plugin_folder, name);
  if (!manifest.ok()) {
    result.problems.push_back({name, manifest_path, std::string(manifest.status().message())});
    return;
  }
  result.plugins.push_back(*std::move(manifest));
}

absl::StatusOr<DiscoveryResult> Discover(const fs::path& given_folder) {
  std::error_code ec;
  const fs::path folder = fs::absolute(given_folder, ec);
  if (ec) return FolderError(given_folder, ec);

  const fs::file_status status = fs::status(folder, ec);
  if (status.type() == fs::file_type::not_found) {
    return FolderError(folder, std::make_error_code(std::errc::no_such_file_or_directory));
  }
  if (ec) return FolderError(folder, ec);
  if (status.type() != fs::file_type::directory) {
    return absl::FailedPreconditionError(absl::StrCat("plugin folder '", folder.string(),
                                                      "' (plugin.folder_path) is not a directory"));
  }

  DiscoveryResult result;
  fs::directory_iterator it(folder, ec);
  if (ec) return FolderError(folder, ec);
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string file_name = it->path().filename().string();
    if (!absl::StartsWith(file_name, kPluginFolderPrefix)) continue;
    // status() follows symlinks: a symlinked plugin folder counts, a dangling
    // link or a prefixed regular file does not.
    std::error_code status_ec;
    if (!it->is_directory(status_ec)) continue;
    ExaminePluginFolder(folder / file_name,
                        file_name.substr(std::char_traits<char>::length(kPluginFolderPrefix)),
                        result);
  }
  if (ec) return FolderError(folder, ec);

  std::sort(result.plugins.begin(), result.plugins.end(),
            [](const PluginManifest& a, const PluginManifest& b) { return a.name < b.name; });
  std::sort(result.problems.begin(), result.problems.end(),
            [](const DiscoveryProblem& a, const DiscoveryProblem& b) {
              return std::tie(a.name, a.manifest) < std::tie(b.name, b.manifest);
            });
  return result;
}

}  // namespace

absl::StatusOr<DiscoveryResult> DiscoverPlugins(const std::filesystem::path& folder) {
  // std::filesystem and std::string may still throw on allocation failure;
  // keep that from crossing the API.
  try {
    return Discover(folder);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("plugin discovery failed: ", e.what()));
  }
}

}  // namespace tracim::broker
