// Crash tests of components with named steps (Options::step_hook): run the work in a forked
// child that SIGKILLs itself when it reaches one step, as a power cut or kill -9 would end it.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace ota::testing {

// In a child process: `create(options)` with a step_hook that raises SIGKILL at `kill_at`, then
// `body(made)` (true = done). The test fails unless the child died of that SIGKILL.
template <typename Options, typename Create, typename Body>
void RunKilledAt(Options options, const std::string& kill_at, const Create& create,
                 const Body& body) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    options.step_hook = [&kill_at](std::string_view step) {
      if (step == kill_at) ::raise(SIGKILL);
    };
    auto made = create(options);
    if (!made.ok() || !body(**made)) ::_exit(3);
    ::_exit(0);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
      << "child did not die at " << kill_at << " (status " << wait_status << ")";
}

}  // namespace ota::testing
