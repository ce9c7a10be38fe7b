// Names of TOML value types for error messages ("expected a string, got integer"), shared by the
// readers of hearth.toml (config.cpp) and of whitelists (whitelist.cpp).
#pragma once

#include <toml++/toml.h>

namespace hearth {

inline const char* toml_type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::table: return "table";
        case toml::node_type::array: return "array";
        case toml::node_type::string: return "string";
        case toml::node_type::integer: return "integer";
        case toml::node_type::floating_point: return "float";
        case toml::node_type::boolean: return "boolean";
        case toml::node_type::date: return "date";
        case toml::node_type::time: return "time";
        case toml::node_type::date_time: return "date-time";
        default: return "nothing";
    }
}

}  // namespace hearth
