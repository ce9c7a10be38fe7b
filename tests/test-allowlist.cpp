// The CURVE allowlist (schema/allowlist.md): a good file with comments, blank lines and tabs; every
// kind of bad line reported with its line number; lookups; and reading files.
#include "allowlist.h"
#include "config.h"
#include "curve-keys.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using hearth::allowlist;
using hearth::config_error;
using hearth::key_role;

namespace {

// Fixed, valid keys (from zmq_curve_keypair) so that failures are reproducible; the third holds a
// '#', which must not be taken for a comment.
const std::string kA = "qacWAMip1EbK(F5&QU6q]$VuW=ifA=^trv!!sm{>";
const std::string kB = "L5TskFIZ7}jl9$@NAdjXU44^1W]UD9fLr1V/sZQ5";
const std::string kHash = "jzlwiF#o2g0M*!phyyZ%IhHL&?80.503M5gNHxZ1";

// The config_error message for text, or "" when it parses.
std::string error_of(const std::string& text) {
    try {
        allowlist::parse(text, "allow.txt");
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "hearth-allow-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string sub(const std::string& rel) const { return std::string(path_).append("/").append(rel); }

private:
    std::string path_;  // made by mkdtemp
};

}  // namespace

TEST(allowlist, test_keys_are_valid) {
    ASSERT_TRUE(hearth::curve_key_valid(kA));
    ASSERT_TRUE(hearth::curve_key_valid(kB));
    ASSERT_TRUE(hearth::curve_key_valid(kHash));
}

TEST(allowlist, good_file_with_comments_blank_lines_and_tabs) {
    const std::string text = "# who may connect\n"
                             "\n"
                             "   \t  \n"
                             "kitchen-pi " + kA + " worker\n"
                             "\toffice_pc\t\t" + kB + "  admin   # Anna's desk\n"
                             "phone " + kHash + " client#no space needed\r\n"
                             "   # indented comment\n"
                             "# " + kA + " client (commented out)\n";
    const allowlist a = allowlist::parse(text, "allow.txt");
    ASSERT_EQ(a.entries().size(), 3u);
    EXPECT_EQ(a.entries()[0].name, "kitchen-pi");
    EXPECT_EQ(a.entries()[0].public_z85, kA);
    EXPECT_EQ(a.entries()[0].role, key_role::worker);
    EXPECT_EQ(a.entries()[1].name, "office_pc");
    EXPECT_EQ(a.entries()[1].public_z85, kB);
    EXPECT_EQ(a.entries()[1].role, key_role::admin);
    EXPECT_EQ(a.entries()[2].name, "phone");
    EXPECT_EQ(a.entries()[2].public_z85, kHash);  // a '#' inside a key is part of it
    EXPECT_EQ(a.entries()[2].role, key_role::client);
    // Empty and comment-only files are valid and admit nobody.
    EXPECT_TRUE(allowlist::parse("", "allow.txt").entries().empty());
    EXPECT_TRUE(allowlist::parse("# nobody yet\n\n", "allow.txt").entries().empty());
    EXPECT_EQ(hearth::key_role_name(key_role::client), "client");
    EXPECT_EQ(hearth::key_role_name(key_role::worker), "worker");
    EXPECT_EQ(hearth::key_role_name(key_role::admin), "admin");
}

TEST(allowlist, find_key_and_name) {
    const allowlist a = allowlist::parse("a " + kA + " client\nb " + kB + " worker\n", "allow.txt");
    ASSERT_NE(a.find_key(kB), nullptr);
    EXPECT_EQ(a.find_key(kB)->name, "b");
    EXPECT_EQ(a.find_key(kB)->role, key_role::worker);
    ASSERT_NE(a.find_name("a"), nullptr);
    EXPECT_EQ(a.find_name("a")->public_z85, kA);
    EXPECT_EQ(a.find_key(kHash), nullptr);
    EXPECT_EQ(a.find_key(""), nullptr);
    EXPECT_EQ(a.find_name("c"), nullptr);
    EXPECT_EQ(a.find_name("local"), nullptr);
}

TEST(allowlist, every_error_names_file_and_line) {
    const std::string head = "# header\nok " + kA + " client\n";  // bad lines start at line 3
    EXPECT_EQ(error_of(head + "x " + kB + " root\n"), "allow.txt:3: unknown role 'root' (client, worker or admin)");
    EXPECT_EQ(error_of(head + "x " + kB + " Client\n"), "allow.txt:3: unknown role 'Client' (client, worker or admin)");
    EXPECT_EQ(error_of(head + "ok " + kB + " worker\n"), "allow.txt:3: name 'ok' is already listed on line 2");
    EXPECT_EQ(error_of(head + "\ndup " + kA + " admin\n"),
              "allow.txt:4: the key of 'dup' is already listed on line 2 as 'ok' (a key names one identity)");
    EXPECT_EQ(error_of(head + "half " + kB + " #role forgotten\n"),
              "allow.txt:3: expected 'name public-key role' (as hearth keygen prints it), found 2 fields");
    EXPECT_EQ(error_of(head + "lonely\n"),
              "allow.txt:3: expected 'name public-key role' (as hearth keygen prints it), found 1 field");
    EXPECT_EQ(error_of(head + "two " + kB + "\n"),
              "allow.txt:3: expected 'name public-key role' (as hearth keygen prints it), found 2 fields");
    EXPECT_EQ(error_of(head + "x " + kB + " client extra\n"),
              "allow.txt:3: expected 'name public-key role' (as hearth keygen prints it), found 4 fields");
    EXPECT_EQ(error_of(head + "Bad.Name " + kB + " client\n"), "allow.txt:3: name 'Bad.Name' must be 1..64 of a-z, 0-9, '_', '-'");
    EXPECT_NE(error_of(head + std::string(65, 'a') + " " + kB + " client\n").find("allow.txt:3: name"), std::string::npos);
    EXPECT_EQ(error_of(head + "local " + kB + " client\n"),
              "allow.txt:3: name 'local' is reserved (plain ipc and loopback connections are 'local')");
    EXPECT_EQ(error_of(head + "x tooshort client\n"),
              "allow.txt:3: 'tooshort' is not a CURVE public key (40 Z85 characters, from NAME.pub or hearth keygen)");
    // 40 characters, but '"' is not in the Z85 alphabet.
    EXPECT_NE(error_of(head + "x " + std::string(40, '"') + " client\n").find("allow.txt:3: '"), std::string::npos);
    // A control character in a value is not echoed raw.
    const std::string msg = error_of(head + "x " + kB + " cl\x01ient\n");
    EXPECT_EQ(msg, "allow.txt:3: unknown role 'cl?ient' (client, worker or admin)");
}

TEST(allowlist, all_problems_are_reported_together_in_line_order) {
    const std::string msg = error_of("a " + kA + " root\nb nokey client\nc " + kB + " worker\nc " + kHash + " admin\n");
    const size_t l1 = msg.find("allow.txt:1: unknown role 'root'");
    const size_t l2 = msg.find("allow.txt:2: 'nokey' is not a CURVE public key");
    const size_t l4 = msg.find("allow.txt:4: name 'c' is already listed on line 3");
    ASSERT_NE(l1, std::string::npos) << msg;
    ASSERT_NE(l2, std::string::npos) << msg;
    ASSERT_NE(l4, std::string::npos) << msg;
    EXPECT_LT(l1, l2);
    EXPECT_LT(l2, l4);
    EXPECT_EQ(msg.find("allow.txt:3:"), std::string::npos) << msg;
    // One line with several faults reports each of them.
    const std::string several = error_of("Bad x root\n");
    EXPECT_NE(several.find("name 'Bad'"), std::string::npos) << several;
    EXPECT_NE(several.find("'x' is not a CURVE public key"), std::string::npos) << several;
    EXPECT_NE(several.find("unknown role 'root'"), std::string::npos) << several;
}

TEST(allowlist, load_reads_the_file_and_names_it_in_errors) {
    temp_dir tmp;
    const std::string path = tmp.sub("allow.txt");
    std::ofstream(path) << "w1 " << kA << " worker\n";
    const allowlist a = allowlist::load(path);
    ASSERT_EQ(a.entries().size(), 1u);
    EXPECT_EQ(a.entries()[0].name, "w1");

    std::ofstream(path) << "\n\nw1 " << kA << " wizard\n";
    try {
        allowlist::load(path);
        ADD_FAILURE() << "bad role accepted";
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()), path + ":3: unknown role 'wizard' (client, worker or admin)");
    }

    try {
        allowlist::load(tmp.sub("missing.txt"));
        ADD_FAILURE() << "missing file accepted";
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()), tmp.sub("missing.txt") + ": cannot read the allowlist: No such file or directory");
    }

    try {
        allowlist::load(tmp.sub(""));
        ADD_FAILURE() << "directory accepted";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
    }

    // A comment-only file just over 1 MiB is refused unread; exactly 1 MiB is fine.
    const std::string big = tmp.sub("big.txt");
    std::ofstream(big) << '#' << std::string((1u << 20) - 2, 'x') << '\n';
    EXPECT_TRUE(allowlist::load(big).entries().empty());
    std::ofstream(big) << '#' << std::string((1u << 20) - 1, 'x') << '\n';
    try {
        allowlist::load(big);
        ADD_FAILURE() << "oversized file accepted";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find(big + ": larger than 1 MiB"), std::string::npos) << e.what();
    }
}

TEST(allowlist, reads_what_keygen_writes) {
    // hearth keygen prints "NAME PUBLIC ROLE": the same line, built from a generated pair, parses.
    const hearth::curve_keypair k = hearth::curve_keypair_generate("garage");
    const allowlist a = allowlist::parse("garage " + k.public_z85 + " client\n", "allow.txt");
    ASSERT_NE(a.find_key(k.public_z85), nullptr);
    EXPECT_EQ(a.find_key(k.public_z85)->name, "garage");
}
