// CURVE key pairs (issue 8's first piece): generation, the two files and their modes, reading them
// back with every check, and `hearth keygen` itself.
#include "bus-harness.h"
#include "curve-keys.h"
#include "test-util.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

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
