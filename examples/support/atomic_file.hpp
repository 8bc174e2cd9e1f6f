// Writing the output files of the examples and tools the way coreutils and rsync do: into a
// unique temporary file beside the target (mkstemp, `<dir>/.<name>.XXXXXX`), every write,
// the fsync and the close checked, then renamed onto the target. On any failure or stop
// the temporary is removed and whatever was at the target is left as it was. A target that
// exists and is not a regular file (a directory, device, FIFO, socket, or a symbolic link,
// wherever it points) is never replaced. Not part of the library.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

#include "support/input_file.hpp"

namespace deis_tools {

/// Never asks a write to stop.
struct never_stop {
    bool operator()() const { return false; }
};

/// Why an output may not be written to `path`: "" when nothing is there (or it cannot be
/// examined: creating the temporary reports that) or a regular file is, which is replaced;
/// else e.g. "is a symbolic link: refusing to replace it ...". A link is not followed.
inline std::string output_refusal(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return "";
    return "is " + file_kind(st.st_mode) + ": refusing to replace it (outputs replace regular files only)";
}

namespace detail {

// An output buffer over a file descriptor: short writes are continued, EINTR retried, and
// the first error (its errno) is kept; nothing more is written after it.
class fd_writebuf : public std::streambuf {
public:
    fd_writebuf() : buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
    void attach(int fd) { fd_ = fd; }
    int error() const { return error_; }

protected:
    int_type overflow(int_type c) override {
        if (!drain()) return traits_type::eof();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    int sync() override { return drain() ? 0 : -1; }

private:
    bool drain() {
        const char* p = pbase();
        std::size_t n = std::size_t(pptr() - pbase());
        while (n > 0 && error_ == 0) {
            const ssize_t w = ::write(fd_, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                error_ = w < 0 ? errno : EIO;
                break;
            }
            p += w;
            n -= std::size_t(w);
        }
        setp(buf_.data(), buf_.data() + buf_.size());
        return error_ == 0;
    }

    std::vector<char> buf_;
    int fd_ = -1;
    int error_ = 0;
};

// The permission bits of a new file: 0666 less the umask (as std::ofstream would create it;
// mkstemp makes 0600). Reading the umask sets it for a moment: call from one thread.
inline mode_t new_file_mode() {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return mode_t(0666) & ~mask;
}

}  // namespace detail

/// One output file being written: a unique temporary beside `path` until commit() renames
/// it onto `path`. Destroyed before commit() (a failure, an exception, a stop), it removes
/// the temporary. Every failure is a std::runtime_error starting with `path`.
class atomic_file {
public:
    explicit atomic_file(std::string path) : path_(std::move(path)), out_(&buf_) {
        refuse_target();
        const std::size_t slash = path_.rfind('/');
        const std::string dir = slash == std::string::npos ? "" : path_.substr(0, slash + 1);
        std::string tmpl = dir + "." + path_.substr(slash == std::string::npos ? 0 : slash + 1) + ".XXXXXX";
        fd_ = ::mkstemp(tmpl.data());
        if (fd_ < 0) {
            const int err = errno;
            fail("cannot create a temporary file in " + (dir.empty() ? std::string(".") : dir), err);
        }
        tmp_ = tmpl;
        buf_.attach(fd_);
        if (::fchmod(fd_, detail::new_file_mode()) != 0) {
            const int err = errno;
            ::close(fd_);  // the destructor does not run for a constructor that throws
            ::unlink(tmp_.c_str());
            fail("cannot set the temporary file's permissions", err);
        }
    }
    ~atomic_file() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
    }
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    /// Where the content goes (into the temporary).
    std::ostream& stream() { return out_; }

    /// Flushes, fsyncs and closes the temporary; throws when any write or these fail.
    void finish() {
        out_.flush();
        if (buf_.error() != 0) fail("write failed", buf_.error());
        if (!out_) fail("write failed", EIO);
        if (::fsync(fd_) != 0) fail_errno("write failed (fsync)");
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) fail_errno("write failed (close)");
    }

    /// Renames the finished temporary onto the path (still refusing a target that is not a
    /// regular file).
    void commit() {
        if (fd_ >= 0) finish();
        refuse_target();
        if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail_errno("cannot rename the temporary file into place");
        committed_ = true;
    }

private:
    // (err: errno, read before anything else could change it)
    [[noreturn]] void fail(const std::string& what, int err) const {
        throw std::runtime_error(path_ + ": " + what + ": " + std::strerror(err));
    }
    [[noreturn]] void fail_errno(const char* what) const {
        const int err = errno;
        fail(what, err);
    }
    void refuse_target() const {
        if (path_.empty()) throw std::runtime_error("an output file name is empty");
        if (path_.back() == '/') throw std::runtime_error(path_ + ": names a directory");
        const std::string why = output_refusal(path_);
        if (!why.empty()) throw std::runtime_error(path_ + ": " + why);
    }

    std::string path_, tmp_;
    detail::fd_writebuf buf_;
    std::ostream out_;
    int fd_ = -1;
    bool committed_ = false;
};

/// Writes the file `path` through an atomic_file: writer(std::ostream&) writes the content
/// and returns false to stop early; stop() is asked once more before the rename. Returns
/// true when the file is in place; false when stopped (the temporary removed, the target
/// untouched); throws std::runtime_error naming `path` when writing fails.
template <class Writer, class Stop = never_stop>
bool atomic_write(const std::string& path, Writer&& writer, Stop&& stop = {}) {
    atomic_file f(path);
    const bool complete = writer(f.stream());
    if (!complete && f.stream()) return false;  // stopped, not failed
    f.finish();
    if (!complete || stop()) return false;
    f.commit();
    return true;
}

/// atomic_write of the bytes of `text`.
inline void write_text_file(const std::string& path, const std::string& text) {
    atomic_write(path, [&](std::ostream& out) { return bool(out << text); });
}

}  // namespace deis_tools
