// Mutual TLS on real gRPC connections over loopback, without root: StartServer with
// GrpcServerCredentials and clients with GrpcChannelCredentials (as otactl) or the secondary
// transport (as a main ECU), certificates of a throw-away PKI (test/lib/make-grpc-tls-pki.sh).
// The served service is the generated base class, which answers every method UNIMPLEMENTED: an
// UNIMPLEMENTED answer proves the call got through the handshake; a refused handshake is
// UNAVAILABLE. The whole daemon over mTLS is tested by test/e2e/mtls_e2e.sh.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "common/config/ecu_info.h"
#include "common/crypto/grpc_tls.h"
#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "grpcpp/grpcpp.h"
#include "otaclient/ecu/secondary_transport.h"
#include "otaclient/service/server.h"
#include "proto/otaclient_v2.grpc.pb.h"
#include "test/unit/crypto/test_pki.h"

namespace ota::service {
namespace {

using crypto::GrpcTlsFiles;
using crypto::GrpcTlsIdentity;
using crypto::TlsUse;

const std::filesystem::path& PkiDir() { return testing::GrpcTlsPkiDir("grpc-tls-server-test"); }

std::string Path(const std::string& name) { return (PkiDir() / name).string(); }

GrpcTlsIdentity Load(const std::string& name, const std::string& ca, TlsUse use) {
  const auto loaded =
      crypto::LoadGrpcTls({Path(name + ".pem"), Path(name + ".key"), Path(ca)}, use);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded.ok() && loaded->has_value());
  return loaded.ok() && loaded->has_value() ? **loaded : GrpcTlsIdentity{};
}

class GrpcTlsServerTest : public ::testing::Test {
 protected:
  // Serves on `address` (port 0) with the certificate `name` of the CA.
  void Serve(const std::string& address, const std::string& name) {
    ServerOptions options;
    options.listen_address = address;
    options.port = 0;
    options.credentials =
        crypto::GrpcServerCredentials(Load(name, "ca.pem", TlsUse::kClientAndServer));
    auto running = StartServer(service_, options);
    ASSERT_TRUE(running.ok()) << running.status();
    server_ = std::move(*running);
  }
  void TearDown() override {
    if (server_.server) server_.server->Shutdown(std::chrono::system_clock::now());
  }

  // A Status call on `target` over `credentials`: its status code.
  static grpc::StatusCode StatusCall(const std::string& target,
                                     const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto stub = OtaClientV2::OtaClientService::NewStub(grpc::CreateChannel(target, credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    OtaClientV2::StatusResponse response;
    return stub->Status(&context, OtaClientV2::StatusRequest(), &response).error_code();
  }
  std::string Target() const { return server_.address; }

  OtaClientV2::OtaClientService::Service service_;  // every method: UNIMPLEMENTED
  RunningServer server_;
};

TEST_F(GrpcTlsServerTest, AClientWithACertificateOfTheCaGetsThrough) {
  Serve("127.0.0.1", "ecu");
  // An operator's client-only certificate (otactl) and another ECU's certificate (a parent).
  EXPECT_EQ(StatusCall(Target(),
                       crypto::GrpcChannelCredentials(Load("operator", "ca.pem", TlsUse::kClient))),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(StatusCall(Target(), crypto::GrpcChannelCredentials(
                                     Load("ecu2", "ca.pem", TlsUse::kClientAndServer))),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(GrpcTlsServerTest, PlainCertificateLessAndForeignClientsAreRefused) {
  Serve("127.0.0.1", "ecu");
  EXPECT_EQ(StatusCall(Target(), grpc::InsecureChannelCredentials()),
            grpc::StatusCode::UNAVAILABLE);
  // TLS, trusting the right CA, but no client certificate.
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = *fs::ReadFile(Path("ca.pem"));
  EXPECT_EQ(StatusCall(Target(), grpc::SslCredentials(no_cert)), grpc::StatusCode::UNAVAILABLE);
  // A certificate of another CA, the client trusting both CAs: only the server can refuse it.
  const std::string both = *fs::ReadFile(Path("ca.pem")) + *fs::ReadFile(Path("other-ca.pem"));
  ASSERT_TRUE(fs::WriteFileAtomic(Path("both-cas.pem"), both).ok());
  EXPECT_EQ(StatusCall(Target(), crypto::GrpcChannelCredentials(
                                     Load("intruder", "both-cas.pem", TlsUse::kClientAndServer))),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcTlsServerTest, TheServerMustBeNamedForTheAddressDialled) {
  // ecu2's certificate names 127.0.0.2 only: served on 127.0.0.1 it is refused by the client ...
  Serve("127.0.0.1", "ecu2");
  const auto operator_tls =
      crypto::GrpcChannelCredentials(Load("operator", "ca.pem", TlsUse::kClient));
  EXPECT_EQ(StatusCall(Target(), operator_tls), grpc::StatusCode::UNAVAILABLE);
  server_.server->Shutdown(std::chrono::system_clock::now());
  // ... and accepted on 127.0.0.2.
  Serve("127.0.0.2", "ecu2");
  EXPECT_EQ(StatusCall(Target(), operator_tls), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(GrpcTlsServerTest, TheSecondaryTransportSpeaksMutualTls) {
  Serve("127.0.0.1", "ecu");
  const config::SecondaryEcu child{
      .ecu_id = "sub", .ip_addr = "127.0.0.1", .port = static_cast<uint16_t>(server_.port)};
  auto status_code = [](std::unique_ptr<ecu::SecondaryTransport> transport) {
    // Shared with the callback: it may still be returning from set_value when get() returns.
    auto code = std::make_shared<std::promise<grpc::StatusCode>>();
    std::future<grpc::StatusCode> answered = code->get_future();
    transport->Status(std::chrono::seconds(10),
                      [code](const grpc::Status& status, const OtaClientV2::StatusResponse&) {
                        code->set_value(status.error_code());
                      });
    return answered.get();  // the transport's destructor then waits for the call to be gone
  };
  // A parent ECU with its own certificate of the CA gets through; a plain one does not.
  EXPECT_EQ(
      status_code(ecu::CreateGrpcSecondaryTransportWith(
          child, crypto::GrpcChannelCredentials(Load("ecu2", "ca.pem", TlsUse::kClientAndServer)))),
      grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status_code(ecu::CreateGrpcSecondaryTransport(child)), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace ota::service
