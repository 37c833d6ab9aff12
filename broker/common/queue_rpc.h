// Unary gRPC calls, served and made, on a CompletionQueueThread: the
// completion-queue API with the bookkeeping done once.
//
// Serving: ServeUnary keeps one call of a method requested on the queue;
// each call that arrives is handed to the handler on the queue's thread,
// which answers it once, from any thread, with the UnaryDone it was given
// (the server's Shutdown waits for calls not answered yet).
//
//   ServeUnary<GetUserRequest, User>(
//       queue,
//       [&service](auto* context, auto* request, auto* writer, void* tag) {
//         service.RequestGetUser(context, request, writer, queue.cq(), queue.server_cq(), tag);
//       },
//       [](grpc::ServerContext& context, const GetUserRequest& request, User& response,
//          UnaryDone done) { ...; done(grpc::Status::OK); });
//
// Calling: a UnaryCall runs `done` on the queue's thread with the call's
// status and response, then deletes itself.
//
//   auto* call = new UnaryCall<HealthCheckResponse>(
//       [](const grpc::Status& status, const HealthCheckResponse& response) { ... });
//   call->context().set_deadline(...);
//   call->Start(queue, [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
//     return stub->PrepareAsyncCheck(context, request, cq);
//   });
#ifndef TRACIM_BROKER_COMMON_QUEUE_RPC_H_
#define TRACIM_BROKER_COMMON_QUEUE_RPC_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "broker/common/completion_queue_thread.h"

namespace tracim::broker {

// Answers one served call: exactly once, from any thread, and before the
// queue shuts down (an answer is an operation on the queue). Copyable; the
// copies share the one answer.
class UnaryDone {
 public:
  class Target {
   public:
    virtual void Answer(const grpc::Status& status) = 0;

   protected:
    ~Target() = default;
  };
  explicit UnaryDone(Target* target) : target_(target) {}
  // An error status answers with no response message.
  void operator()(const grpc::Status& status) const { target_->Answer(status); }

 private:
  Target* target_;
};

template <typename Request, typename Response>
using UnaryHandler = std::function<void(grpc::ServerContext& context, const Request& request,
                                        Response& response, UnaryDone done)>;

// Requests the next call of the method: a generated Request<Method>, with the
// queue's cq() and server_cq().
template <typename Request, typename Response>
using UnaryRequester =
    std::function<void(grpc::ServerContext* context, Request* request,
                       grpc::ServerAsyncResponseWriter<Response>* writer, void* tag)>;

namespace queue_rpc_internal {

template <typename Request, typename Response>
struct Method {
  UnaryRequester<Request, Response> request;
  UnaryHandler<Request, Response> handler;
};

// One call of a served method, from its request to its answer.
template <typename Request, typename Response>
class ServedCall final : public CompletionQueueThread::Completion, public UnaryDone::Target {
 public:
  explicit ServedCall(std::shared_ptr<const Method<Request, Response>> method)
      : method_(std::move(method)), writer_(&context_) {}

  void Listen() {
    method_->request(&context_, &request_, &writer_, CompletionQueueThread::Tag(this));
  }

  void OnComplete(bool ok) override {
    if (answered_) {
      delete this;  // the answer went out (or the call was gone)
      return;
    }
    if (!ok) {
      delete this;  // the server is shutting down: no call came
      return;
    }
    // The next call of the method may arrive while this one runs.
    (new ServedCall(method_))->Listen();
    method_->handler(context_, request_, response_, UnaryDone(this));
  }

  void Answer(const grpc::Status& status) override {
    // Read by OnComplete only after the Finish below completes.
    answered_ = true;
    if (status.ok()) {
      writer_.Finish(response_, status, CompletionQueueThread::Tag(this));
    } else {
      writer_.FinishWithError(status, CompletionQueueThread::Tag(this));
    }
  }

 private:
  const std::shared_ptr<const Method<Request, Response>> method_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> writer_;
  bool answered_ = false;
};

}  // namespace queue_rpc_internal

// Serves a unary method with `handler` until the server shuts down. Call
// after the server started.
template <typename Request, typename Response>
void ServeUnary(UnaryRequester<Request, Response> request,
                UnaryHandler<Request, Response> handler) {
  auto method = std::make_shared<const queue_rpc_internal::Method<Request, Response>>(
      queue_rpc_internal::Method<Request, Response>{std::move(request), std::move(handler)});
  (new queue_rpc_internal::ServedCall<Request, Response>(std::move(method)))->Listen();
}

// The same for a generated AsyncService's method, requested on `queue`
// (made with ForServer for the server `service` is registered with):
//   ServeUnary(queue, service, &Admin::AsyncService::RequestListPlugins, handler);
template <typename Service, typename Owner, typename Request, typename Response>
void ServeUnary(CompletionQueueThread& queue, Service& service,
                void (Owner::*request_method)(grpc::ServerContext*, Request*,
                                              grpc::ServerAsyncResponseWriter<Response>*,
                                              grpc::CompletionQueue*, grpc::ServerCompletionQueue*,
                                              void*),
                std::type_identity_t<UnaryHandler<Request, Response>> handler) {
  ServeUnary<Request, Response>(
      [&queue, &service, request_method](grpc::ServerContext* context, Request* request,
                                         grpc::ServerAsyncResponseWriter<Response>* writer,
                                         void* tag) {
        (service.*request_method)(context, request, writer, queue.cq(), queue.server_cq(), tag);
      },
      std::move(handler));
}

// A service served with the completion-queue API on a server's queue: the
// server registers service() before it starts, then calls Serve.
class QueueService {
 public:
  virtual ~QueueService() = default;
  virtual grpc::Service* service() = 0;
  // Its full name, e.g. "tracim.plugin.v1.HostApi".
  virtual std::string name() const = 0;
  // Requests every method of the service on `queue` (ServeUnary).
  virtual void Serve(CompletionQueueThread& queue) = 0;
};

// A unary client call on a queue. Heap-allocate it, set up context(), then
// Start: `done` runs on the queue's thread and the call deletes itself.
template <typename Response>
class UnaryCall final : public CompletionQueueThread::Completion {
 public:
  using Done = std::function<void(const grpc::Status& status, const Response& response)>;
  explicit UnaryCall(Done done) : done_(std::move(done)) {}

  grpc::ClientContext& context() { return context_; }

  // `prepare(context, cq)` returns the generated PrepareAsync<Method>'s
  // reader for the request.
  template <typename Prepare>
  void Start(CompletionQueueThread& queue, Prepare prepare) {
    reader_ = prepare(&context_, queue.cq());
    reader_->StartCall();
    reader_->Finish(&response_, &status_, CompletionQueueThread::Tag(this));
  }

  void OnComplete(bool) override {
    done_(status_, response_);
    delete this;
  }

 private:
  Done done_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader_;
  Response response_;
  grpc::Status status_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_COMMON_QUEUE_RPC_H_
