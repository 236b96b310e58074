// A protobuf DescriptorDatabase that asks a running server through the gRPC reflection service
// (grpc.reflection.v1alpha), like grpc::ProtoReflectionDescriptorDatabase (not shipped by
// Debian) and grpcurl do. The reflection messages are encoded by hand (field numbers of
// reflection.proto), so a client needs no .proto of the server at all:
//
//   ReflectionDescriptorDatabase db(channel);
//   google::protobuf::DescriptorPool pool(&db);
//   pool.FindServiceByName("OtaClientV2.OtaClientService");   // fetched lazily
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace ota::testlib {

// ServerReflectionRequest fields.
inline constexpr int kReqFileByFilename = 3;
inline constexpr int kReqFileContainingSymbol = 4;
inline constexpr int kReqListServices = 7;
// ServerReflectionResponse fields.
inline constexpr int kRespFileDescriptorResponse = 4;
inline constexpr int kRespListServicesResponse = 6;
inline constexpr int kRespErrorResponse = 7;

inline grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// One unary call over the generic stub: `method` ("/pkg.Service/Method"), raw bytes in and out.
inline grpc::Status GenericUnary(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& method, const std::string& request,
                                 std::string* response) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareUnaryCall(&context, method, ToByteBuffer(request), &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || !ok) status = grpc::Status(grpc::StatusCode::INTERNAL, "cq failed");
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (status.ok()) *response = FromByteBuffer(reply);
  return status;
}

class ReflectionDescriptorDatabase : public google::protobuf::DescriptorDatabase {
 public:
  explicit ReflectionDescriptorDatabase(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)) {}

  // ListServices: the service names the server reports. False when the call failed.
  bool ListServices(std::vector<std::string>* names) {
    google::protobuf::UnknownFieldSet response;
    if (!Ask(kReqListServices, "*", &response)) return false;
    for (int i = 0; i < response.field_count(); ++i) {
      if (response.field(i).number() != kRespListServicesResponse) continue;
      google::protobuf::UnknownFieldSet list;
      if (!list.ParseFromString(response.field(i).length_delimited())) return false;
      for (int j = 0; j < list.field_count(); ++j) {
        google::protobuf::UnknownFieldSet service;
        if (!service.ParseFromString(list.field(j).length_delimited())) return false;
        for (int k = 0; k < service.field_count(); ++k) {
          if (service.field(k).number() == 1) names->push_back(service.field(k).length_delimited());
        }
      }
    }
    return true;
  }

  bool FindFileByName(const std::string& filename,
                      google::protobuf::FileDescriptorProto* output) override {
    return Fetch(
        kReqFileByFilename, filename, [&](const auto& file) { return file.name() == filename; },
        output);
  }
  bool FindFileContainingSymbol(const std::string& symbol_name,
                                google::protobuf::FileDescriptorProto* output) override {
    // The server answers with the file defining the symbol first.
    return Fetch(
        kReqFileContainingSymbol, symbol_name, [](const auto&) { return true; }, output);
  }
  bool FindFileContainingExtension(const std::string&, int,
                                   google::protobuf::FileDescriptorProto*) override {
    return false;
  }

 private:
  // One reflection round trip on a fresh stream; false on any transport or decoding error.
  bool Ask(int field, const std::string& value, google::protobuf::UnknownFieldSet* response) {
    google::protobuf::UnknownFieldSet request;
    request.AddLengthDelimited(field, value);
    std::string bytes;
    if (!request.SerializeToString(&bytes)) return false;
    grpc::GenericStub stub(channel_);
    grpc::CompletionQueue cq;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto call = stub.PrepareCall(
        &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
    grpc::ByteBuffer reply;
    grpc::Status status;
    auto step = [&](intptr_t tag) {
      void* got = nullptr;
      bool ok = false;
      return cq.Next(&got, &ok) && ok && got == reinterpret_cast<void*>(tag);
    };
    bool ok = true;
    call->StartCall(reinterpret_cast<void*>(1));
    ok = ok && step(1);
    if (ok) call->Write(ToByteBuffer(bytes), reinterpret_cast<void*>(2));
    ok = ok && step(2);
    if (ok) call->Read(&reply, reinterpret_cast<void*>(3));
    ok = ok && step(3);
    if (ok) call->WritesDone(reinterpret_cast<void*>(4));
    ok = ok && step(4);
    if (ok) call->Finish(&status, reinterpret_cast<void*>(5));
    ok = ok && step(5) && status.ok();
    if (!ok) context.TryCancel();
    cq.Shutdown();
    void* tag;
    bool tag_ok;
    while (cq.Next(&tag, &tag_ok)) {
    }
    return ok && response->ParseFromString(FromByteBuffer(reply));
  }

  template <typename Match>
  bool Fetch(int field, const std::string& value, Match match,
             google::protobuf::FileDescriptorProto* output) {
    google::protobuf::UnknownFieldSet response;
    if (!Ask(field, value, &response)) return false;
    for (int i = 0; i < response.field_count(); ++i) {
      if (response.field(i).number() == kRespErrorResponse) return false;
      if (response.field(i).number() != kRespFileDescriptorResponse) continue;
      google::protobuf::UnknownFieldSet files;
      if (!files.ParseFromString(response.field(i).length_delimited())) return false;
      for (int j = 0; j < files.field_count(); ++j) {
        google::protobuf::FileDescriptorProto file;
        if (!file.ParseFromString(files.field(j).length_delimited())) return false;
        if (match(file)) {
          *output = file;
          return true;
        }
      }
    }
    return false;
  }

  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace ota::testlib
