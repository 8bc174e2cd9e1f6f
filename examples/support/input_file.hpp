// Opening the input files of the examples and tools: regular files only, of bounded size.
// A FIFO, a device (/dev/zero), a directory or a socket is refused at once, without
// blocking (a FIFO is opened with O_NONBLOCK, then examined); the size is checked before
// the first byte is read, and the bytes read are counted, so that a file that grows while
// it is read is cut off too. Not part of the library.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <istream>
#include <limits>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

namespace deis_tools {

/// What a file of mode `mode` (stat's st_mode) is, as a phrase: "a regular file", "a FIFO", ...
inline std::string file_kind(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a regular file";
}

namespace detail {

// An input buffer over a file descriptor that reads at most `max` bytes: one more is an
// error (std::runtime_error starting with `name`), as is a failed read.
class fd_readbuf : public std::streambuf {
public:
    fd_readbuf(int fd, std::uintmax_t max, std::string name)
        : fd_(fd), max_(max), name_(std::move(name)), buf_(1 << 16) {
        setg(buf_.data(), buf_.data(), buf_.data());
    }

protected:
    int_type underflow() override {
        if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
        ssize_t got = 0;
        do got = ::read(fd_, buf_.data(), buf_.size());
        while (got < 0 && errno == EINTR);
        if (got < 0) {
            const int err = errno;
            throw std::runtime_error(name_ + ": read error: " + std::strerror(err));
        }
        if (got == 0) return traits_type::eof();
        read_ += std::uintmax_t(got);
        if (read_ > max_) throw std::runtime_error(name_ + ": " + too_long(max_));
        setg(buf_.data(), buf_.data(), buf_.data() + got);
        return traits_type::to_int_type(*gptr());
    }

public:
    static std::string too_long(std::uintmax_t max) {
        return "is longer than " + std::to_string(max) + " bytes (the limit)";
    }

private:
    int fd_;
    std::uintmax_t max_, read_ = 0;
    std::string name_;
    std::vector<char> buf_;
};

}  // namespace detail

/// An input file, open for reading when it is a regular file of at most `max_bytes` bytes;
/// anything else is refused with a std::runtime_error starting with `name` (by default the
/// path). stream() reads it (a read error, or more than max_bytes, throws from there too).
class input_file {
public:
    static constexpr std::uintmax_t unlimited = std::numeric_limits<std::uintmax_t>::max();

    explicit input_file(const std::string& path, std::uintmax_t max_bytes = unlimited, std::string name = "")
        : name_(name.empty() ? path : std::move(name)), fd_(open_regular(path, max_bytes, name_)),
          buf_(fd_, max_bytes, name_), in_(&buf_) {
        in_.exceptions(std::ios::badbit);  // a read error thrown by the buffer passes through
    }
    ~input_file() { ::close(fd_); }
    input_file(const input_file&) = delete;
    input_file& operator=(const input_file&) = delete;

    std::istream& stream() { return in_; }

private:
    static int open_regular(const std::string& path, std::uintmax_t max_bytes, const std::string& name) {
        // O_NONBLOCK: opening a FIFO does not wait for a writer
        const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            throw std::runtime_error(name + ": cannot open file for reading: " + std::strerror(err));
        }
        struct stat st {};
        std::string problem;
        if (::fstat(fd, &st) != 0)
            problem = std::string("cannot examine it: ") + std::strerror(errno);
        else if (!S_ISREG(st.st_mode))
            problem = "is " + file_kind(st.st_mode) + ", not a regular file (inputs must be regular files)";
        else if (std::uintmax_t(st.st_size) > max_bytes)
            problem = detail::fd_readbuf::too_long(max_bytes);
        else if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
            problem = std::string("cannot read it: ") + std::strerror(errno);
        if (problem.empty()) return fd;
        ::close(fd);
        throw std::runtime_error(name + ": " + problem);
    }

    std::string name_;
    int fd_;
    detail::fd_readbuf buf_;
    std::istream in_;
};

}  // namespace deis_tools
