"""Regenerate the web-page, DOCX and PDF renditions of the corpus texts in this folder.

Run from the repository root: ``.venv/bin/python tests/data/policy/corpus/make_renditions.py``.
The texts are the official documents (see SOURCES.md); the renditions wrap them the way the
publishing sites and offices do: a gov.cn page with its metadata table, a provincial page with
label lines whose value sits on the next line, a people's congress page, Word files and PDFs.
"""

from __future__ import annotations

import csv
import html
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "renditions"
sys.path.insert(0, str(HERE.parents[3]))

from tests.policy.renditions import write_docx, write_pdf, write_pdf_table  # noqa: E402


def lines_of(name: str) -> list[str]:
    """The non-empty lines of one corpus text."""
    text = (HERE / name).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def paragraphs(lines: list[str]) -> str:
    return "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)


def govcn_page(lines: list[str], meta: dict[str, str], path: Path) -> None:
    """A State Council page: metadata table (label cell, value cell), content, site chrome."""
    rows = "\n".join(
        f"<tr><td><b>{html.escape(k)}：</b></td><td>{html.escape(v)}</td></tr>"
        for k, v in meta.items()
    )
    path.write_text(
        f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{html.escape(meta["标　　题"])}_政府信息公开专栏</title>
<script>var zoom = 1; function doZoom(size) {{ document.body.style.fontSize = size; }}</script>
<style>.b12c {{ font-size: 16px; }}</style></head>
<body>
<div class="header"><a href="/">中国政府网</a> <a href="/zhengce/">政策</a></div>
<div class="nav"><ul><li>首页</li><li>简</li><li>繁</li><li>EN</li><li>登录</li><li>邮箱</li><li>无障碍</li></ul></div>
<div class="BreadcrumbNav">首页 &gt; 政策 &gt; 国务院政策文件库 &gt; 国务院文件</div>
<div class="wrap"><table class="bd1">
{rows}
</table>
<table><tr><td class="b12c" id="UCAP-CONTENT">
{paragraphs(lines)}
</td></tr></table>
<div id="div_div"><div id="qr_container">扫一扫在手机打开当前页</div></div>
<div class="share">【我要打印】【关闭窗口】</div></div>
<div class="footer"><p>版权所有：中国政府网 | 关于本网 | 网站声明 | 网站地图 | 联系我们</p>
<p>京ICP备05070218号 京公网安备11010202000001号</p></div>
</body></html>
""",
        encoding="utf-8",
    )


def label_lines_page(lines: list[str], labels: list[tuple[str, str]], path: Path) -> None:
    """A provincial portal page: each label on its own line and its value on the next."""
    info = "\n".join(
        f"<div class='info-item'><span>{html.escape(k)}：</span></div>"
        f"<div class='info-value'>{html.escape(v)}</div>"
        for k, v in labels
    )
    path.write_text(
        f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="gbk">
<title>{html.escape(lines[0])}</title></head>
<body>
<div class="top">网站支持IPv6 无障碍 长者模式</div>
<div class="menu">首页 政务公开 政务服务 互动交流 数据开放</div>
<div class="position">当前位置：首页 &gt; 政务公开 &gt; 文件库</div>
<div class="detail">
<h1>{html.escape(lines[0])}</h1>
{info}
<div class="content">
{paragraphs(lines[1:])}
</div>
<div class="tools">【字体：大 中 小】 【打印】 【关闭】</div>
</div>
<div class="bottom"><p>主办单位：某省人民政府办公厅</p><p>网站标识码：1100000088</p></div>
</body></html>
""",
        encoding="gbk",
        errors="strict",
    )


def npc_page(
    lines: list[str], path: Path, published: str = "2020-03-20", source: str = "上海人大"
) -> None:
    """A people's congress page: the law with its promulgation line and a view counter."""
    path.write_text(
        f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(lines[0])}</title></head>
<body>
<nav>首页 | 法规规章 | 立法动态 | 代表工作</nav>
<div class="crumbs">您现在的位置：首页 &gt;&gt; 法规规章 &gt;&gt; 地方性法规</div>
<article><h2>{html.escape(lines[0])}</h2>
<div class="meta">发布时间：{published} 来源：{source} 浏览量：2318</div>
{paragraphs(lines[1:])}
</article>
<footer>Copyright © 上海市人大常委会办公厅 沪ICP备10000000号</footer>
</body></html>
""",
        encoding="utf-8",
    )


def task_table_rows(name: str = "zhejiang-ai-renwu.tsv") -> list[list[str]]:
    """The rows of a task table kept as tab-separated text."""
    with (HERE / name).open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def task_table_page(rows: list[list[str]], path: Path) -> None:
    """The task breakdown as an HTML table under its title, with a merged title row."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    path.write_text(
        f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>浙江省人工智能高质量发展重点任务分工</title></head>
<body>
<div class="nav">首页 新闻 政务公开 办事服务</div>
<h1>浙江省人工智能高质量发展重点任务分工</h1>
<p>附件</p>
<p>重点任务分工表</p>
<table border="1">
<tr><td colspan="6">重点任务分工表</td></tr>
<tr>{head}</tr>
{body}
</table>
</body></html>
""",
        encoding="utf-8",
    )


def main() -> None:
    OUT.mkdir(exist_ok=True)
    govcn_page(
        lines_of("guobanfa-2018-123.txt"),
        {
            "索 引 号": "000014349/2018-00221",
            "主题分类": "综合政务\\政务公开",
            "发文机关": "国务院办公厅",
            "成文日期": "2018年12月07日",
            "标　　题": "国务院办公厅关于推进政务新媒体健康有序发展的意见",
            "发文字号": "国办发〔2018〕123号",
            "发布日期": "2018年12月27日",
            "主 题 词": "",
        },
        OUT / "guobanfa-2018-123.html",
    )
    govcn_page(
        lines_of("guobanhan-2005-21.txt"),
        {
            "索 引 号": "000014349/2005-00156",
            "主题分类": "科技、教育\\科技",
            "发文机关": "国务院办公厅",
            "成文日期": "2005年03月03日",
            "标　　题": "国务院办公厅关于科技节水建议的复函",
            "发文字号": "国办函〔2005〕21号",
            "发布日期": "2018年12月24日",
            "主 题 词": "",
        },
        OUT / "guobanhan-2005-21.html",
    )
    label_lines_page(
        lines_of("guobanfa-1996-25.txt"),
        [
            ("发布日期", "2018-12-24"),
            ("分类", "国防"),
            ("主题词", "化学武器 调查 通知"),
            ("浏览量", "1536"),
        ],
        OUT / "guobanfa-1996-25.html",
    )
    npc_page(lines_of("shanghai-huizhanye-tiaoli.txt"), OUT / "shanghai-huizhanye-tiaoli.html")
    label_lines_page(
        lines_of("guangdong-shuzi-2025.txt"),
        [("分类", "综合政务"), ("浏览量", "4410")],
        OUT / "guangdong-shuzi-2025.html",
    )
    write_docx(lines_of("guobanhan-2004-71.txt"), OUT / "guobanhan-2004-71.docx")
    write_docx(lines_of("shanghai-cujin-jiuye.txt"), OUT / "shanghai-cujin-jiuye.docx")
    write_docx(lines_of("guangdong-shuzi-2025.txt"), OUT / "guangdong-shuzi-2025.docx")
    write_pdf(lines_of("guofa-2018-43.txt"), OUT / "guofa-2018-43.pdf")
    write_pdf(lines_of("shanghai-dayiqi-gongxiang.txt"), OUT / "shanghai-dayiqi-gongxiang.pdf")
    law = lines_of("fanbuzhengdang-jingzheng-fa.txt")
    npc_page(law, OUT / "fanbuzhengdang-jingzheng-fa.html", "2019-04-24", "中国人大网")
    write_docx(law, OUT / "fanbuzhengdang-jingzheng-fa.docx")
    write_pdf(law, OUT / "fanbuzhengdang-jingzheng-fa.pdf")
    label_lines_page(
        lines_of("guangdong-shuzi-2025-2.txt"),
        [("发布日期", "2025-04-18"), ("分类", "综合政务"), ("浏览量", "2957")],
        OUT / "guangdong-shuzi-2025-2.html",
    )
    write_docx(lines_of("guowuyuanling-728.txt"), OUT / "guowuyuanling-728.docx")
    code = lines_of("minfadian-hunyin-jiating.txt")
    npc_page(code, OUT / "minfadian-hunyin-jiating.html", "2020-06-01", "中国人大网")
    write_docx(code, OUT / "minfadian-hunyin-jiating.docx")
    write_pdf(code, OUT / "minfadian-hunyin-jiating.pdf")
    tax = lines_of("yinhuashui-fa.txt")
    npc_page(tax, OUT / "yinhuashui-fa.html", "2021-06-11", "中国人大网")
    write_pdf(tax, OUT / "yinhuashui-fa.pdf")
    ecommerce = lines_of("shanghai-dianzi-shangwu.txt")
    label_lines_page(
        ecommerce, [("分类", "地方性法规"), ("浏览量", "812")], OUT / "shanghai-dianzi-shangwu.html"
    )
    write_docx(ecommerce, OUT / "shanghai-dianzi-shangwu.docx")
    more = task_table_rows("zhejiang-ai-renwu-2.tsv")
    task_table_page(more, OUT / "zhejiang-ai-renwu-2.html")
    write_docx(
        ["浙江省人工智能高质量发展重点任务分工", "附件", "重点任务分工表"],
        OUT / "zhejiang-ai-renwu-2.docx",
        table=more,
    )
    write_pdf_table(
        ["浙江省人工智能高质量发展重点任务分工", "附件", "重点任务分工表"],
        more,
        OUT / "zhejiang-ai-renwu-2.pdf",
        widths=[30, 110, 330, 110, 150, 70],
    )
    rows = task_table_rows()
    write_pdf_table(
        ["浙江省人工智能高质量发展重点任务分工", "附件", "重点任务分工表"],
        rows,
        OUT / "zhejiang-ai-renwu.pdf",
        widths=[30, 110, 330, 110, 150, 70],
    )
    task_table_page(rows, OUT / "zhejiang-ai-renwu.html")
    write_docx(
        ["浙江省人工智能高质量发展重点任务分工", "附件", "重点任务分工表"],
        OUT / "zhejiang-ai-renwu.docx",
        table=rows,
    )


if __name__ == "__main__":
    main()
