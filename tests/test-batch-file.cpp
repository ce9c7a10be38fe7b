// Batch files for `hearth batch submit` (clients/batch-file.h): JSON Lines into validated wire
// requests, with every problem reported at its line before anything reaches the broker.
#include "batch-file.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace wire = hearth::wire;
using hearth::batch_defaults;
using hearth::batch_file;
using hearth::batch_file_parse;

std::string all_errors(const batch_file& f) {
    std::string s;
    for (const auto& e : f.errors) s.append(e).append("\n");
    return s;
}

TEST(batch_file, minimal_line_gets_defaults_batch_priority_and_line_number_id) {
    const batch_file f = batch_file_parse("{\"prompt\":\"hello\"}\n", "jobs.jsonl");
    ASSERT_TRUE(f.ok()) << all_errors(f);
    ASSERT_EQ(f.jobs.size(), 1u);
    const wire::request& r = f.jobs[0];
    const wire::request plain;
    EXPECT_EQ(r.id, "1");
    EXPECT_EQ(r.service, "complete");
    EXPECT_EQ(r.prompt, "hello");
    EXPECT_EQ(r.max_tokens, plain.max_tokens);
    EXPECT_EQ(r.temperature, plain.temperature);
    EXPECT_EQ(r.top_k, plain.top_k);
    EXPECT_FALSE(r.seed.has_value());
    EXPECT_EQ(r.prio, wire::priority::batch);
    EXPECT_FALSE(r.stream);
    EXPECT_EQ(f.lines, (std::vector<size_t>{1}));
    EXPECT_EQ(f.error_count, 0u);
}

TEST(batch_file, defaults_apply_where_lines_are_silent_and_lines_override_them) {
    batch_defaults d;
    d.service = "command";
    d.max_tokens = 17;
    d.temperature = 0.0f;
    d.top_k = 5;
    d.top_p = 0.5f;
    d.min_p = 0.1f;
    d.repeat_penalty = 1.2f;
    d.seed = 99;
    const std::string text =
        "{\"prompt\":\"a\"}\n"
        "{\"id\":\"x\",\"service\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}],"
        "\"max_tokens\":3,\"temperature\":1.5,\"top_k\":0,\"top_p\":1,\"min_p\":0,\"repeat_penalty\":1,\"seed\":18446744073709551615,"
        "\"stop\":[\"END\",\"\\n\\n\"],\"deadline_ms\":60000,\"priority\":\"batch\"}\n";
    const batch_file f = batch_file_parse(text, "f.jsonl", d);
    ASSERT_TRUE(f.ok()) << all_errors(f);
    ASSERT_EQ(f.jobs.size(), 2u);
    const wire::request& a = f.jobs[0];
    EXPECT_EQ(a.id, "1");
    EXPECT_EQ(a.service, "command");
    EXPECT_EQ(a.max_tokens, 17);
    EXPECT_EQ(a.temperature, 0.0f);
    EXPECT_EQ(a.top_k, 5);
    EXPECT_EQ(a.top_p, 0.5f);
    EXPECT_EQ(a.min_p, 0.1f);
    EXPECT_EQ(a.repeat_penalty, 1.2f);
    ASSERT_TRUE(a.seed.has_value());
    EXPECT_EQ(*a.seed, 99u);
    const wire::request& b = f.jobs[1];
    EXPECT_EQ(b.id, "x");
    EXPECT_EQ(b.service, "chat");
    ASSERT_EQ(b.messages.size(), 2u);
    EXPECT_EQ(b.messages[0].role, "system");
    EXPECT_EQ(b.messages[1].content, "u");
    EXPECT_EQ(b.max_tokens, 3);
    EXPECT_EQ(b.temperature, 1.5f);
    EXPECT_EQ(b.top_k, 0);
    EXPECT_EQ(b.top_p, 1.0f);
    EXPECT_EQ(b.min_p, 0.0f);
    EXPECT_EQ(b.repeat_penalty, 1.0f);
    ASSERT_TRUE(b.seed.has_value());
    EXPECT_EQ(*b.seed, 18446744073709551615ull);
    EXPECT_EQ(b.stop, (std::vector<std::string>{"END", "\n\n"}));
    EXPECT_EQ(b.deadline_ms, 60000u);
    EXPECT_EQ(b.prio, wire::priority::batch);
    EXPECT_FALSE(b.stream);
}

TEST(batch_file, blank_lines_are_skipped_but_counted) {
    const batch_file f = batch_file_parse("\n   \n{\"prompt\":\"a\"}\r\n\t\n\n{\"prompt\":\"b\"}", "f");
    ASSERT_TRUE(f.ok()) << all_errors(f);
    ASSERT_EQ(f.jobs.size(), 2u);
    EXPECT_EQ(f.lines, (std::vector<size_t>{3, 6}));
    EXPECT_EQ(f.jobs[0].id, "3");
    EXPECT_EQ(f.jobs[1].id, "6");
    EXPECT_EQ(f.jobs[1].prompt, "b");
}

TEST(batch_file, malformed_json_names_its_line) {
    const batch_file f = batch_file_parse("{\"prompt\":\"a\"}\n{\"prompt\": \"b\",}\n{\"prompt\":\"c\"}\n", "in.jsonl");
    EXPECT_FALSE(f.ok());
    EXPECT_TRUE(f.jobs.empty()) << "nothing is returned once any line is bad";
    EXPECT_TRUE(f.lines.empty());
    ASSERT_EQ(f.errors.size(), 1u);
    EXPECT_EQ(f.errors[0].rfind("in.jsonl:2: invalid JSON: ", 0), 0u) << f.errors[0];
    EXPECT_EQ(f.errors[0].find("[json.exception"), std::string::npos) << f.errors[0];
}

TEST(batch_file, line_that_is_not_an_object) {
    const batch_file f = batch_file_parse("[\"prompt\"]\n\"text\"\n42\n", "f");
    ASSERT_EQ(f.errors.size(), 3u) << all_errors(f);
    EXPECT_EQ(f.errors[0], "f:1: expected a JSON object, got array");
    EXPECT_EQ(f.errors[1], "f:2: expected a JSON object, got string");
    EXPECT_EQ(f.errors[2], "f:3: expected a JSON object, got number");
}

TEST(batch_file, unknown_field_suggests_the_near_one) {
    const batch_file f = batch_file_parse(
        "{\"promt\":\"a\"}\n{\"prompt\":\"a\",\"max-tokens\":5}\n{\"prompt\":\"a\",\"temp\":0.1}\n{\"prompt\":\"a\",\"colour\":\"red\"}\n", "f");
    ASSERT_EQ(f.errors.size(), 4u) << all_errors(f);
    EXPECT_EQ(f.errors[0], "f:1: unknown field 'promt' (did you mean 'prompt'?)");
    EXPECT_EQ(f.errors[1], "f:2: unknown field 'max-tokens' (did you mean 'max_tokens'?)");
    EXPECT_EQ(f.errors[2], "f:3: unknown field 'temp' (did you mean 'temperature'?)");
    EXPECT_EQ(f.errors[3], "f:4: unknown field 'colour'");
    EXPECT_EQ(hearth::batch_field_suggest("sed"), "seed");
    EXPECT_EQ(hearth::batch_field_suggest("zzzzzzzz"), "");
}

TEST(batch_file, wrong_types_are_named) {
    const std::string text =
        "{\"id\":7,\"prompt\":\"a\"}\n"
        "{\"prompt\":[\"a\"]}\n"
        "{\"prompt\":\"a\",\"max_tokens\":\"10\"}\n"
        "{\"prompt\":\"a\",\"max_tokens\":1.5}\n"
        "{\"prompt\":\"a\",\"temperature\":\"hot\"}\n"
        "{\"prompt\":\"a\",\"seed\":-1}\n"
        "{\"prompt\":\"a\",\"stop\":\"END\"}\n"
        "{\"prompt\":\"a\",\"stop\":[\"a\",3]}\n"
        "{\"service\":\"chat\",\"messages\":[{\"role\":\"user\"}]}\n"
        "{\"service\":\"chat\",\"messages\":\"hi\"}\n"
        "{\"prompt\":\"a\",\"priority\":\"interactive\"}\n"
        "{\"prompt\":\"a\",\"deadline_ms\":-5}\n"
        "{\"prompt\":\"a\",\"max_tokens\":99999999999}\n"
        "{\"prompt\":null}\n";
    const batch_file f = batch_file_parse(text, "t");
    const std::vector<std::string> want = {
        "t:1: field 'id': expected a string",
        "t:2: field 'prompt': expected a string",
        "t:3: field 'max_tokens': expected an integer",
        "t:4: field 'max_tokens': expected an integer",
        "t:5: field 'temperature': expected a number",
        "t:6: field 'seed': expected a non-negative integer",
        "t:7: field 'stop': expected an array of strings",
        "t:8: field 'stop[1]': expected a string",
        "t:9: field 'messages[0].content': required",
        "t:10: field 'messages': expected an array of {\"role\", \"content\"} objects",
        "t:11: field 'priority': only \"batch\" is allowed in a batch file (or leave it out)",
        "t:12: field 'deadline_ms': integer out of range 0..4294967295",
        "t:13: field 'max_tokens': integer out of range -2147483648..2147483647",
        "t:14: field 'prompt': expected a string",
    };
    EXPECT_EQ(f.errors, want) << all_errors(f);
    EXPECT_EQ(f.error_count, want.size());
}

TEST(batch_file, validation_errors_carry_line_numbers) {
    const std::string text =
        "{\"prompt\":\"ok\"}\n"
        "{\"prompt\":\"a\",\"temperature\":-1}\n"
        "{\"prompt\":\"\"}\n"
        "{\"service\":\"Bad Service\",\"prompt\":\"a\"}\n"
        "{\"prompt\":\"a\",\"top_p\":0}\n"
        "{\"service\":\"chat\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}\n"
        "{\"service\":\"chat\",\"prompt\":\"no messages\"}\n";
    const batch_file f = batch_file_parse(text, "v.jsonl");
    ASSERT_EQ(f.errors.size(), 6u) << all_errors(f);
    EXPECT_EQ(f.errors[0], "v.jsonl:2: field 'temperature': must be in [0, 100], got -1");
    EXPECT_EQ(f.errors[1], "v.jsonl:3: field 'prompt': required and non-empty for service 'complete'");
    EXPECT_EQ(f.errors[2].rfind("v.jsonl:4: field 'service': ", 0), 0u) << f.errors[2];
    EXPECT_EQ(f.errors[3].rfind("v.jsonl:5: field 'top_p': must be in (0, 1]", 0), 0u) << f.errors[3];
    EXPECT_EQ(f.errors[4].rfind("v.jsonl:6: field 'messages[0].role'", 0), 0u) << f.errors[4];
    EXPECT_EQ(f.errors[5].rfind("v.jsonl:7: field 'messages'", 0), 0u) << f.errors[5];
    // A bad default is reported at each line that relies on it, not at lines that override it.
    batch_defaults d;
    d.temperature = 200.0f;
    const batch_file g = batch_file_parse("{\"prompt\":\"a\"}\n{\"prompt\":\"b\",\"temperature\":0}\n", "d", d);
    ASSERT_EQ(g.errors.size(), 1u) << all_errors(g);
    EXPECT_EQ(g.errors[0].rfind("d:1: field 'temperature'", 0), 0u) << g.errors[0];
}

TEST(batch_file, duplicate_ids_name_both_lines) {
    const batch_file f = batch_file_parse("{\"id\":\"a\",\"prompt\":\"x\"}\n{\"id\":\"b\",\"prompt\":\"x\"}\n{\"id\":\"a\",\"prompt\":\"y\"}\n", "dup");
    ASSERT_EQ(f.errors.size(), 1u) << all_errors(f);
    EXPECT_EQ(f.errors[0], "dup:3: duplicate id 'a': line 1 has it too");
    // A line number given as an id on another line collides with a line without id.
    const batch_file g = batch_file_parse("{\"prompt\":\"x\"}\n{\"id\":\"1\",\"prompt\":\"y\"}\n", "dup");
    ASSERT_EQ(g.errors.size(), 1u) << all_errors(g);
    EXPECT_EQ(g.errors[0], "dup:2: duplicate id '1': line 1 has it too (its line number, as it has no id)");
}

TEST(batch_file, empty_file_is_an_error) {
    for (const char* text : {"", "\n\n  \n"}) {
        SCOPED_TRACE(testing::PrintToString(text));
        const batch_file f = batch_file_parse(text, "empty.jsonl");
        EXPECT_FALSE(f.ok());
        ASSERT_EQ(f.errors.size(), 1u);
        EXPECT_EQ(f.errors[0], "empty.jsonl: no jobs (the file has no JSON lines)");
        EXPECT_TRUE(f.jobs.empty());
    }
    EXPECT_EQ(batch_file_parse("", "-").errors[0], "<stdin>: no jobs (the file has no JSON lines)");
}

TEST(batch_file, many_errors_are_capped) {
    std::string text;
    for (int i = 0; i < 50; ++i) text += i % 10 == 0 ? "{\"prompt\":\"fine\"}\n" : "{\"prompt\":1}\n";
    const batch_file f = batch_file_parse(text, "m");
    EXPECT_EQ(f.error_count, 45u);
    ASSERT_EQ(f.errors.size(), batch_file::max_errors_shown + 1);
    EXPECT_EQ(f.errors[0], "m:2: field 'prompt': expected a string");
    EXPECT_EQ(f.errors[19], "m:23: field 'prompt': expected a string");
    EXPECT_EQ(f.errors.back(), "and 25 more errors");
    EXPECT_TRUE(f.jobs.empty());
}

TEST(batch_file, broker_job_index_maps_to_the_line) {
    const batch_file f = batch_file_parse("\n{\"prompt\":\"a\"}\n\n\n{\"prompt\":\"b\"}\n", "x.jsonl");
    ASSERT_TRUE(f.ok()) << all_errors(f);
    EXPECT_EQ(f.locate("jobs[1]: field 'prompt': too long"), "x.jsonl:5: field 'prompt': too long");
    EXPECT_EQ(f.locate("jobs[0]: no"), "x.jsonl:2: no");
    EXPECT_EQ(f.locate("jobs[2]: beyond the file"), "jobs[2]: beyond the file");
    EXPECT_EQ(f.locate("jobs[x]: odd"), "jobs[x]: odd");
    EXPECT_EQ(f.locate("the queue is full"), "the queue is full");
}

TEST(batch_file, reads_a_file_and_reports_a_missing_one) {
    const std::filesystem::path p = std::filesystem::temp_directory_path() / ("hearth-batch-file-" + std::to_string(::getpid()) + ".jsonl");
    std::ofstream(p) << "\xEF\xBB\xBF{\"prompt\":\"with a BOM\"}\n";
    const batch_file f = hearth::batch_file_read(p.string());
    std::filesystem::remove(p);
    ASSERT_TRUE(f.ok()) << all_errors(f);
    ASSERT_EQ(f.jobs.size(), 1u);
    EXPECT_EQ(f.jobs[0].prompt, "with a BOM");
    const batch_file g = hearth::batch_file_read(p.string());
    ASSERT_EQ(g.errors.size(), 1u);
    EXPECT_NE(g.errors[0].find(": cannot open: "), std::string::npos) << g.errors[0];
}

}  // namespace
