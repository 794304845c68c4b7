#include "daemon/worker_pool.hpp"

#include <sched.h>
#include <sys/stat.h>

namespace airlock::daemon {

WorkerPool::WorkerPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

bool WorkerPool::submit(std::function<void()> task) {
    {
        std::lock_guard lock(mutex_);
        if (queue_.size() >= max_queued_ || stopping_) return false;
        queue_.push_back(std::move(task));
    }
    wake_.notify_one();
    return true;
}

void WorkerPool::run() {
    // Each worker creates files for agents with the agent's umask applied by
    // hand; a private fs_struct keeps umask(0) from touching the other threads.
    ::unshare(CLONE_FS);
    ::umask(0);
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        task();
    }
}

}  // namespace airlock::daemon
