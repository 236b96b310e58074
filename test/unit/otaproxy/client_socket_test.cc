// Writes to client sockets never deliver SIGPIPE, whatever the process does with it: the library
// leaves the process's disposition alone (that is main's business), so a client that went away
// must not kill a process that kept the default (terminate).
#include "otaproxy/server/client_socket.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/fs/fs.h"
#include "gtest/gtest.h"
#include "otaproxy/server/response.h"

namespace ota::proxy {
namespace {

bool SigpipePending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

bool SigpipeBlocked() {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE) == 1;
}

class ClientSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The point of the test: the process would die of a delivered SIGPIPE.
    struct sigaction current {};
    ASSERT_EQ(sigaction(SIGPIPE, nullptr, &current), 0);
    ASSERT_EQ(current.sa_handler, SIG_DFL);
    ASSERT_FALSE(SigpipeBlocked());
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ours_ = fs::UniqueFd(fds[0]);
    ::close(fds[1]);  // the client went away
    auto dir = fs::TempDir::Create("client-socket-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
    ASSERT_TRUE(fs::WriteFileAtomic(dir_->path() / "body", std::string(100000, 'x')).ok());
    body_ = fs::UniqueFd(::open((dir_->path() / "body").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(body_.valid());
  }

  fs::UniqueFd ours_;
  std::unique_ptr<fs::TempDir> dir_;
  fs::UniqueFd body_;
};

// Without protection this very call raises SIGPIPE: the other tests could fail.
TEST_F(ClientSocketTest, BareSendfileToAGoneClientRaisesSigpipe) {
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
  off_t offset = 0;
  EXPECT_LT(::sendfile(ours_.get(), body_.get(), &offset, 1000), 0);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_TRUE(SigpipePending());
  const timespec zero{};
  EXPECT_EQ(sigtimedwait(&sigpipe, nullptr, &zero), SIGPIPE);
  pthread_sigmask(SIG_UNBLOCK, &sigpipe, nullptr);
}

TEST_F(ClientSocketTest, WritesToAGoneClientFailWithoutSigpipe) {
  EXPECT_EQ(SendSome(ours_.get(), "HTTP/1.1 200 OK\r\n\r\n", false).status,
            IoResult::Status::kClosed);
  EXPECT_EQ(SendSome(ours_.get(), "HTTP/1.1 200 OK\r\n\r\n", true).status,
            IoResult::Status::kClosed);
  EXPECT_EQ(SendFileSome(ours_.get(), body_.get(), 0, 100000).status, IoResult::Status::kClosed);
  EXPECT_EQ(SendFileSome(ours_.get(), body_.get(), 10, 5000).status, IoResult::Status::kClosed);
  OutputQueue out;
  out.Add(FormatSimple(502, "gone\n", true));
  out.AddFile(body_.get(), 0, 100000);
  EXPECT_EQ(out.WriteTo(ours_.get(), 1 << 20).status, IoResult::Status::kClosed);
  // Still alive; nothing left pending and the thread's mask is as it was.
  EXPECT_FALSE(SigpipePending());
  EXPECT_FALSE(SigpipeBlocked());
}

TEST_F(ClientSocketTest, ACallerWhoBlocksSigpipeKeepsWhatItRaised) {
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
  EXPECT_EQ(SendFileSome(ours_.get(), body_.get(), 0, 100000).status, IoResult::Status::kClosed);
  EXPECT_TRUE(SigpipeBlocked());  // not unblocked behind the caller's back
  EXPECT_TRUE(SigpipePending());  // the caller's to take
  const timespec zero{};
  EXPECT_EQ(sigtimedwait(&sigpipe, nullptr, &zero), SIGPIPE);
  pthread_sigmask(SIG_UNBLOCK, &sigpipe, nullptr);
}

// The I/O threads block SIGPIPE for their whole life; what their writes raise is taken back.
TEST_F(ClientSocketTest, ASigpipeOwnerThreadTakesBackWhatItsWritesRaise) {
  bool blocked_inside = false;
  IoResult::Status status = IoResult::Status::kOk;
  bool pending_after = true;
  bool blocked_after = true;
  std::thread t([&] {
    {
      SigpipeOwner owner;
      blocked_inside = SigpipeBlocked();
      status = SendFileSome(ours_.get(), body_.get(), 0, 100000).status;
      pending_after = SigpipePending();
    }
    blocked_after = SigpipeBlocked();
  });
  t.join();
  EXPECT_TRUE(blocked_inside);
  EXPECT_EQ(status, IoResult::Status::kClosed);
  EXPECT_FALSE(pending_after);
  EXPECT_FALSE(blocked_after);  // the thread's mask is restored when the owner ends
  EXPECT_FALSE(SigpipePending());
}

}  // namespace
}  // namespace ota::proxy
