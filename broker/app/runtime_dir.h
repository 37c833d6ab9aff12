// The broker's runtime folder for sockets: broker.runtime_dir, else systemd's
// $RUNTIME_DIRECTORY, else a private temporary folder removed at exit. Always
// mode 0700 and owned by the broker's user. Not thread-safe (startup only).
#ifndef TRACIM_BROKER_APP_RUNTIME_DIR_H_
#define TRACIM_BROKER_APP_RUNTIME_DIR_H_

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace tracim::broker {

class RuntimeDir {
 public:
  // `configured`: broker.runtime_dir; `systemd_dir`: $RUNTIME_DIRECTORY (may
  // list several folders separated by ':'; the first is used).
  // FAILED_PRECONDITION naming the folder when it cannot be made private.
  static absl::StatusOr<RuntimeDir> Prepare(const std::optional<std::filesystem::path>& configured,
                                            const std::optional<std::string>& systemd_dir);

  RuntimeDir(RuntimeDir&& other) noexcept;
  RuntimeDir& operator=(RuntimeDir&&) = delete;
  // Removes the folder if this created it as a temporary one.
  ~RuntimeDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  RuntimeDir(std::filesystem::path path, bool temporary)
      : path_(std::move(path)), temporary_(temporary) {}
  std::filesystem::path path_;
  bool temporary_ = false;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_APP_RUNTIME_DIR_H_
