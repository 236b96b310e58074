// The pieces of a gapless ClientUpdate hand-over (otaclient/service/port_handover.h) on real
// kernel sockets: the listen lock, and the reuseport steering that sends new connections to the
// socket that joined the port second.
#include "otaclient/service/port_handover.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "common/util/strings.h"
#include "test/lib/loopback.h"

namespace ota::service {
namespace {

TEST(PortLockTest, ASecondDaemonCannotTakeTheSameAddress) {
  const std::string address = StrCat("port-lock-test-a-", ::getpid(), ":1");
  auto first = PortLock::Acquire(address);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = PortLock::Acquire(address);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("another otaclient already serves " + address),
            std::string::npos)
      << second.status();
  // Another address is another lock.
  EXPECT_TRUE(PortLock::Acquire(address + "1").ok());
}

TEST(PortLockTest, OnlyTheLockOfThatAddressIsAdopted) {
  const std::string address = StrCat("port-lock-test-b-", ::getpid(), ":1");
  auto lock = PortLock::Acquire(address);
  ASSERT_TRUE(lock.ok()) << lock.status();
  // The inherited copy the new client gets.
  const int inherited = ::fcntl(lock->fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(inherited, 0);
  EXPECT_FALSE(PortLock::Adopt(::fcntl(lock->fd(), F_DUPFD_CLOEXEC, 0), address + "9").ok());
  const int not_a_socket = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_FALSE(PortLock::Adopt(not_a_socket, address).ok());
  ::close(not_a_socket);
  auto adopted = PortLock::Adopt(inherited, address);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  // Still held while either copy is open.
  lock = absl::InternalError("released");
  EXPECT_EQ(PortLock::Acquire(address).status().code(), absl::StatusCode::kAlreadyExists);
}

int Listener(int port, int* bound_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::listen(fd, 64), 0);
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *bound_port = ntohs(address.sin_port);
  return fd;
}

fs::UniqueFd Connect(int port) {
  absl::StatusOr<fs::UniqueFd> fd = ota::testing::ConnectLoopback(port);
  EXPECT_TRUE(fd.ok()) << fd.status();
  return fd.ok() ? std::move(*fd) : fs::UniqueFd();
}

// How many connections are waiting in `listener`'s accept queue (accepts them all).
int Pending(int listener) {
  int n = 0;
  for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) ::close(fd);
  return n;
}

TEST(SteeringTest, NewConnectionsGoToTheSocketThatJoinedSecond) {
  int port = 0;
  const int old_listener = Listener(0, &port);
  ASSERT_GT(port, 0);
  ASSERT_TRUE(SteerNewConnectionsToSuccessor(port).ok());
  // Alone: the program's index is out of range, the old socket gets everything.
  const fs::UniqueFd c1 = Connect(port);
  EXPECT_EQ(Pending(old_listener), 1);
  int same = 0;
  const int new_listener = Listener(port, &same);
  ASSERT_EQ(same, port);
  fs::UniqueFd connections[16];
  for (fs::UniqueFd& c : connections) c = Connect(port);  // the handshake completes in connect()
  EXPECT_EQ(Pending(old_listener), 0);
  EXPECT_EQ(Pending(new_listener), 16);
  // The old socket leaves: the new one is alone and keeps getting them.
  ::close(old_listener);
  const fs::UniqueFd c2 = Connect(port);
  EXPECT_EQ(Pending(new_listener), 1);
  ::close(new_listener);
}

TEST(SteeringTest, WithoutAListenerOnThePortNothingIsSteered) {
  EXPECT_EQ(SteerNewConnectionsToSuccessor(1).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ota::service
