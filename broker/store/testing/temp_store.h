// Test helpers for code that uses a Store: a fresh folder under $TMPDIR
// (removed with its content), a pinned clock, and options that make a
// SqliteStore in that folder fast to use (cheapest password hashing).
// One per test; FakeClock is thread-safe, the rest is not.
//
//   TempDir dir;
//   FakeClock clock;
//   auto store = SqliteStore::Open(dir.path() / "db.sqlite3", TestStoreOptions(&clock));
#ifndef TRACIM_BROKER_STORE_TESTING_TEMP_STORE_H_
#define TRACIM_BROKER_STORE_TESTING_TEMP_STORE_H_

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "broker/store/sqlite_store.h"
#include "tests/common/temp_dir.h"

namespace tracim::broker {

using TempDir = ::tracim::testing::TempDir;

// Starts at Start(); moves only when told.
class FakeClock {
 public:
  static absl::Time Start() {
    return absl::FromCivil(absl::CivilSecond(2024, 1, 2, 3, 4, 5), absl::UTCTimeZone());
  }
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = Start();
};

// `clock` must outlive the store.
inline SqliteStoreOptions TestStoreOptions(FakeClock* clock) {
  SqliteStoreOptions options;
  options.password_cost = 1;
  options.now = [clock] { return clock->Now(); };
  return options;
}

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_TESTING_TEMP_STORE_H_
