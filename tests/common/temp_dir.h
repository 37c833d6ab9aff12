// A fresh folder under $TMPDIR (or /tmp) for one test, removed with its
// content, permissions given back first so that a test that removed some
// does not leave debris. Header-only test helper; one per test: not
// thread-safe.
#ifndef TRACIM_TESTS_COMMON_TEMP_DIR_H_
#define TRACIM_TESTS_COMMON_TEMP_DIR_H_

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace tracim::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "tracim_test") {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      // Nothing a test could do without its folder.
      std::fprintf(stderr, "mkdtemp(%s): %s\n", templ.c_str(), strerror(errno));
      std::abort();
    }
    path_ = templ;
  }
  ~TempDir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tracim::testing

#endif  // TRACIM_TESTS_COMMON_TEMP_DIR_H_
