// ref-server: the reference for tests/bench/rpc-bench. grpc.health.v1.Health/Check (always SERVING) on Debian's
// libgrpc++ (the same C core as our runtime), built the same way as our server so that the comparison is fair:
// an async server, one completion queue, WORKERS threads polling it, and the same number of armed requests per
// method as services/core/rpc arms (min(max(WORKERS, 4), 16)). Usage:
//
//     ref-server PORT [WORKERS]
//
// Prints "listening on 127.0.0.1:PORT" once it serves; exits 0 on SIGTERM or SIGINT.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <unistd.h>

#include "health.grpc.pb.h"

namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class CheckCall {
public:
        CheckCall(Health::AsyncService *service, grpc::ServerCompletionQueue *cq)
            : service_(service), cq_(cq), responder_(&ctx_) {
                service_->RequestCheck(&ctx_, &request_, &responder_, cq_, cq_, this);
        }

        // One step of the call's life: a new call arrived (arm the next one, answer), or the answer went out.
        void Proceed(bool ok) {
                if (state_ == State::kWaiting) {
                        if (!ok) {  // shutting down: the armed request was withdrawn
                                delete this;
                                return;
                        }
                        new CheckCall(service_, cq_);
                        state_ = State::kFinishing;
                        response_.set_status(HealthCheckResponse::SERVING);
                        responder_.Finish(response_, grpc::Status::OK, this);
                } else {
                        delete this;
                }
        }

private:
        enum class State { kWaiting, kFinishing };
        Health::AsyncService *service_;
        grpc::ServerCompletionQueue *cq_;
        grpc::ServerContext ctx_;
        HealthCheckRequest request_;
        HealthCheckResponse response_;
        grpc::ServerAsyncResponseWriter<HealthCheckResponse> responder_;
        State state_ = State::kWaiting;
};

long ParseArg(const char *s, const char *what, long min, long max) {
        char *end = nullptr;
        errno = 0;
        long v = std::strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
                std::fprintf(stderr, "ref-server: %s must be a number from %ld to %ld, not \"%s\"\n", what, min,
                             max, s);
                std::exit(2);
        }
        return v;
}

}  // namespace

int main(int argc, char **argv) {
        if (argc < 2 || argc > 3) {
                std::fprintf(stderr, "usage: %s PORT [WORKERS]\n", argv[0]);
                return 2;
        }
        int port = static_cast<int>(ParseArg(argv[1], "PORT", 0, 65535));
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int workers = argc > 2 ? static_cast<int>(ParseArg(argv[2], "WORKERS", 1, 256))
                               : static_cast<int>(ncpu > 0 ? ncpu : 1);

        // Block the stop signals in every thread; the main thread waits for them with sigwait.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);

        Health::AsyncService service;
        grpc::ServerBuilder builder;
        int bound = 0;
        builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &bound);
        builder.RegisterService(&service);
        std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
        std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
        if (!server || bound == 0) {
                std::fprintf(stderr, "ref-server: cannot listen on 127.0.0.1:%d\n", port);
                return 1;
        }

        int armed = std::min(std::max(workers, 4), 16);
        for (int i = 0; i < armed; i++)
                new CheckCall(&service, cq.get());

        std::vector<std::thread> threads;
        for (int i = 0; i < workers; i++) {
                threads.emplace_back([&cq] {
                        void *tag = nullptr;
                        bool ok = false;
                        while (cq->Next(&tag, &ok))
                                static_cast<CheckCall *>(tag)->Proceed(ok);
                });
        }
        std::printf("listening on 127.0.0.1:%d (%d workers)\n", bound, workers);
        std::fflush(stdout);

        int sig = 0;
        while (sigwait(&set, &sig) != 0) {
        }
        std::fprintf(stderr, "ref-server: signal %d, stopping\n", sig);
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
        cq->Shutdown();
        for (auto &t : threads)
                t.join();
        return 0;
}
