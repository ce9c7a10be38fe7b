// CURVE key pairs (issue 8's first piece): generation, the two files and their modes, reading them
// back with every check, and `hearth keygen` itself.
#include "bus-harness.h"
#include "curve-keys.h"
#include "test-util.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <sys/stat.h>

#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <optional>

namespace fs = std::filesystem;
using hearth::curve_keypair;
using hearth::key_error;

namespace {

class keys : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hearth-keys-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }
    mode_t mode_of(const std::string& p) {
        struct stat st {};
        EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
        return st.st_mode & 0777;
    }
    std::string error_of(const std::string& path) {
        try {
            hearth::curve_keypair_read(path);
        } catch (const key_error& e) {
            return e.what();
        }
        return "";
    }
    std::string dir_;  // the key directory of this test
};

}  // namespace

TEST_F(keys, generated_pairs_are_valid_and_distinct) {
    const curve_keypair a = hearth::curve_keypair_generate("kitchen"), b = hearth::curve_keypair_generate("kitchen");
    EXPECT_TRUE(hearth::curve_key_valid(a.public_z85));
    EXPECT_TRUE(hearth::curve_key_valid(a.secret_z85));
    EXPECT_NE(a.secret_z85, b.secret_z85);
    char derived[41];
    ASSERT_EQ(zmq_curve_public(derived, a.secret_z85.c_str()), 0);
    EXPECT_EQ(a.public_z85, derived);
    EXPECT_FALSE(hearth::curve_key_valid("short"));
    EXPECT_FALSE(hearth::curve_key_valid(std::string(40, '"')));  // not Z85
}

TEST_F(keys, written_with_private_secret_and_read_back) {
    const std::string sub = dir_ + "/nested/keys";
    const curve_keypair k = hearth::curve_keypair_generate("office-pc");
    hearth::curve_keypair_write(sub, k, false);
    EXPECT_EQ(mode_of(sub + "/office-pc.key"), 0600u);
    EXPECT_EQ(mode_of(sub + "/office-pc.pub"), 0644u);
    const curve_keypair back = hearth::curve_keypair_read(sub + "/office-pc.key");
    EXPECT_EQ(back.name, "office-pc");
    EXPECT_EQ(back.public_z85, k.public_z85);
    EXPECT_EQ(back.secret_z85, k.secret_z85);
    const curve_keypair pub = hearth::curve_keypair_read(sub + "/office-pc.pub");
    EXPECT_EQ(pub.public_z85, k.public_z85);
    EXPECT_TRUE(pub.secret_z85.empty());
    std::ifstream in(sub + "/office-pc.pub");
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(text.find(k.secret_z85), std::string::npos) << "the public file never holds the secret";
}

TEST_F(keys, existing_pair_is_kept_unless_replaced) {
    const curve_keypair first = hearth::curve_keypair_generate("w1"), second = hearth::curve_keypair_generate("w1");
    hearth::curve_keypair_write(dir_, first, false);
    try {
        hearth::curve_keypair_write(dir_, second, false);
        ADD_FAILURE() << "expected a refusal";
    } catch (const key_error& e) {
        EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
    }
    EXPECT_EQ(hearth::curve_keypair_read(dir_ + "/w1.key").secret_z85, first.secret_z85);
    hearth::curve_keypair_write(dir_, second, true);
    EXPECT_EQ(hearth::curve_keypair_read(dir_ + "/w1.key").secret_z85, second.secret_z85);
    EXPECT_EQ(hearth::curve_keypair_read(dir_ + "/w1.pub").public_z85, second.public_z85);
    EXPECT_FALSE(fs::exists(dir_ + "/w1.key.tmp"));
    EXPECT_THROW(hearth::curve_keypair_write(dir_, hearth::curve_keypair_generate("Bad Name"), false), key_error);
}

TEST_F(keys, bad_key_files_are_refused_with_the_reason) {
    const curve_keypair k = hearth::curve_keypair_generate("c");
    hearth::curve_keypair_write(dir_, k, false);
    const std::string key = dir_ + "/c.key";
    ::chmod(key.c_str(), 0640);
    EXPECT_NE(error_of(key).find("chmod 600"), std::string::npos) << error_of(key);
    ::chmod(key.c_str(), 0600);
    const curve_keypair other = hearth::curve_keypair_generate("c");
    {
        std::ofstream(key) << "public = \"" << other.public_z85 << "\"\nsecret = \"" << k.secret_z85 << "\"\n";
    }
    EXPECT_NE(error_of(key).find("does not belong"), std::string::npos) << error_of(key);
    { std::ofstream(key) << "public = \"tooshort\"\n"; }
    EXPECT_NE(error_of(key).find("no valid 'public'"), std::string::npos) << error_of(key);
    EXPECT_NE(error_of(dir_ + "/missing.key").find("cannot read"), std::string::npos);
    { std::ofstream(key) << std::string(5000, 'x'); }
    EXPECT_NE(error_of(key).find("larger than 4 KiB"), std::string::npos);
}

TEST_F(keys, hearth_keygen_prints_the_allowlist_line) {
    const std::string hearth = hearth::test::binary_dir() + "/clients/hearth";
    auto r = hearth::test::command_run({hearth, "keygen", "kitchen-pi", "--dir", dir_, "--role", "worker"});
    ASSERT_EQ(r.status, 0) << r.err;
    const curve_keypair k = hearth::curve_keypair_read(dir_ + "/kitchen-pi.key");
    EXPECT_EQ(r.out, "kitchen-pi " + k.public_z85 + " worker\n");
    EXPECT_EQ(r.out.find(k.secret_z85), std::string::npos);
    auto again = hearth::test::command_run({hearth, "keygen", "kitchen-pi", "--dir", dir_});
    EXPECT_EQ(again.status, 2);
    EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
    EXPECT_EQ(hearth::curve_keypair_read(dir_ + "/kitchen-pi.key").secret_z85, k.secret_z85);
    auto bad = hearth::test::command_run({hearth, "keygen", "Kitchen Pi", "--dir", dir_});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("a-z"), std::string::npos) << bad.err;
}

namespace {

// Points key_dir_default() at a test directory through XDG_CONFIG_HOME, restoring it afterwards.
class xdg_scope {
public:
    explicit xdg_scope(const std::string& dir) {
        if (const char* v = std::getenv("XDG_CONFIG_HOME")) saved_ = v;
        ::setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
    }
    ~xdg_scope() {
        if (saved_) ::setenv("XDG_CONFIG_HOME", saved_->c_str(), 1);
        else ::unsetenv("XDG_CONFIG_HOME");
    }

private:
    std::optional<std::string> saved_;  // the value before the test, if any
};

std::string resolve_error(const std::string& v) {
    try {
        hearth::curve_public_key_resolve(v);
    } catch (const key_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_F(keys, key_file_resolve_takes_names_to_the_key_dir_and_keeps_paths) {
    xdg_scope xdg(dir_);
    EXPECT_EQ(hearth::key_dir_default(), dir_ + "/hearth/keys");
    EXPECT_EQ(hearth::curve_key_file_resolve("broker"), dir_ + "/hearth/keys/broker.key");
    EXPECT_EQ(hearth::curve_key_file_resolve("kitchen-pi_2"), dir_ + "/hearth/keys/kitchen-pi_2.key");
    for (const std::string path : {"broker.key", "./broker", "/etc/hearth/keys/w1.key", "keys/w1.key", "Broker", "../x"})
        EXPECT_EQ(hearth::curve_key_file_resolve(path), path);
}

TEST_F(keys, public_key_resolve_from_z85_pub_key_and_names) {
    xdg_scope xdg(dir_);
    const std::string kdir = dir_ + "/hearth/keys";
    const curve_keypair broker = hearth::curve_keypair_generate("broker");
    hearth::curve_keypair_write(kdir, broker, false);
    // 40 Z85 characters are the key itself; no file is looked at.
    const curve_keypair other = hearth::curve_keypair_generate("x");
    EXPECT_EQ(hearth::curve_public_key_resolve(other.public_z85), other.public_z85);
    // Paths to either file.
    EXPECT_EQ(hearth::curve_public_key_resolve(kdir + "/broker.pub"), broker.public_z85);
    EXPECT_EQ(hearth::curve_public_key_resolve(kdir + "/broker.key"), broker.public_z85);
    // A name: NAME.pub, the file a peer is given, is preferred over NAME.key.
    EXPECT_EQ(hearth::curve_public_key_resolve("broker"), broker.public_z85);
    { std::ofstream(kdir + "/broker.pub") << "public = \"" << other.public_z85 << "\"\n"; }
    EXPECT_EQ(hearth::curve_public_key_resolve("broker"), other.public_z85);
    // Only NAME.key (the machine that owns the pair): it serves too.
    fs::remove(kdir + "/broker.pub");
    EXPECT_EQ(hearth::curve_public_key_resolve("broker"), broker.public_z85);
    // Only NAME.pub.
    const curve_keypair w = hearth::curve_keypair_generate("w2");
    hearth::curve_keypair_write(kdir, w, false);
    fs::remove(kdir + "/w2.key");
    EXPECT_EQ(hearth::curve_public_key_resolve("w2"), w.public_z85);
}

TEST_F(keys, public_key_resolve_errors_name_the_value_and_the_file) {
    xdg_scope xdg(dir_);
    const std::string kdir = dir_ + "/hearth/keys";
    std::string msg = resolve_error("xyz");
    EXPECT_EQ(msg.rfind("public key 'xyz': neither a 40-character Z85 key nor a readable key file (", 0), 0u) << msg;
    EXPECT_NE(msg.find(kdir + "/xyz.pub and " + kdir + "/xyz.key: not found"), std::string::npos) << msg;
    // 40 characters outside the Z85 alphabet: not a key, and no such file.
    msg = resolve_error(std::string(40, '"'));
    EXPECT_NE(msg.find("neither a 40-character Z85 key"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot read"), std::string::npos) << msg;
    // A path to garbage.
    const std::string junk = dir_ + "/junk.pub";
    { std::ofstream(junk) << "hello\n"; }
    msg = resolve_error(junk);
    EXPECT_NE(msg.find(junk + ": has no valid 'public' key"), std::string::npos) << msg;
    // A key file others may read is refused, even when only the public half is wanted.
    const curve_keypair k = hearth::curve_keypair_generate("leaky");
    hearth::curve_keypair_write(kdir, k, false);
    fs::remove(kdir + "/leaky.pub");
    ::chmod((kdir + "/leaky.key").c_str(), 0644);
    msg = resolve_error("leaky");
    EXPECT_NE(msg.find("chmod 600"), std::string::npos) << msg;
    // A value with control characters is not echoed raw.
    msg = resolve_error("bad\nvalue");
    EXPECT_EQ(msg.rfind("public key 'bad?value'", 0), 0u) << msg;
    EXPECT_THROW(hearth::curve_public_key_resolve(""), key_error);
}
