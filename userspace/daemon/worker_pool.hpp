// A few threads for held calls whose emulation may block (a blocking connect
// to a slow host, opening a FIFO): the event loop must keep answering every
// other session meanwhile. Bounded queue: a full pool refuses, it never grows.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace airlock::daemon {

class WorkerPool {
public:
    WorkerPool(std::size_t threads, std::size_t max_queued);
    ~WorkerPool();  // runs what is queued, then joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // False when the queue is full; the caller answers the call itself.
    [[nodiscard]] bool submit(std::function<void()> task);

private:
    void run();
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> queue_;
    std::size_t max_queued_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace airlock::daemon
